"""Exporters Prometheus scrapes: PostgreSQL, Redis, nginx, and the blackbox probe of the public URL.

All join the stack's one network (the hardening issue splits it into front and back; these
belong on the back one). None publishes a port: only Prometheus reads them.

Flags and variables used are the ones both the upstream images (the defaults) and Debian
bookworm's packages (the test images) accept, read from their --help:
- postgres_exporter: DATA_SOURCE_NAME (a libpq URI), listens on :9187;
- redis_exporter: REDIS_ADDR and REDIS_PASSWORD (its flags' environment defaults), :9121;
- nginx-prometheus-exporter: --nginx.scrape-uri (Go's flag package and kingpin both take
  the double dash), :9113; it reads nginx's stub_status page (rendering/nginx.py);
- blackbox_exporter: --config.file, :9115, probes at /probe?module=...&target=....
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_docker as docker

from components.container_defaults import container_options, healthcheck, managed_container
from components.postgres import NETWORK_ALIAS as POSTGRES_ALIAS
from components.proxy import NETWORK_ALIAS as NGINX_ALIAS
from components.proxy import STATUS_PORT as NGINX_STATUS_PORT
from components.redis import NETWORK_ALIAS as REDIS_ALIAS
from rendering.alerts import render_blackbox_yml
from rendering.nginx import STATUS_PATH
from rendering.redis import EXPORTER_USER
from settings import POSTGRES_PORT, REDIS_PORT, Settings

# Network alias -> port of each exporter; rendering/monitoring.py's targets are built from it.
PORTS = {"postgres-exporter": 9187, "redis-exporter": 9121, "nginx-exporter": 9113, "blackbox-exporter": 9115}
BLACKBOX_CONF = "/etc/blackbox_exporter/config.yml"
BLACKBOX_CA = "/etc/blackbox_exporter/stack-ca.pem"
# The upstream nginx exporter image is FROM scratch: no shell, no wget. Its health check can
# only run the binary; whether it really reads nginx shows as up{job="nginx"} (ExporterDown).
NGINX_EXPORTER_BINARY = "/usr/bin/nginx-prometheus-exporter"
MEMORY_MB = 128


def _http_check(port: int) -> docker.ContainerHealthcheckArgs:
    # "/" is each exporter's landing page: it answers without scraping the service behind it.
    return healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}/"])


def postgres_dsn(user: str, password: str, database: str) -> str:
    # Quoted: a generated password may hold characters a URI reserves.
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{POSTGRES_ALIAS}:{POSTGRES_PORT}/"
        f"{quote(database, safe='')}?sslmode=disable"
    )


@dataclass(frozen=True)
class ExportersArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    redis_password: pulumi.Input[str]
    # The stack's certificate (None with tls.mode=off): the probe's trust anchor.
    cert_pem: pulumi.Input[str] | None
    wait_for: Sequence[pulumi.Resource] = ()
    # The exporter's own PostgreSQL role's password (pg_monitor only; scripts/db_roles.py creates it).
    monitor_password: pulumi.Input[str] | None = None
    # The front network (issue 10): the exporters that read nginx join it as well as `network_name`
    # (back), where Prometheus scrapes them.
    front_network: pulumi.Input[str] | None = None


class Exporters(pulumi.ComponentResource):
    container_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ExportersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:monitoring:Exporters", name, None, opts)
        settings = args.settings
        mon = settings.monitoring
        pg = settings.postgres
        self.container_names = {}

        def container(
            alias: str,
            image: str,
            check: docker.ContainerHealthcheckArgs,
            *,
            reads_nginx: bool = False,
            **inputs: object,
        ) -> None:
            networks = [docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[alias])]
            if reads_nginx and args.front_network is not None:
                networks.append(docker.ContainerNetworksAdvancedArgs(name=args.front_network, aliases=[alias]))
            remote = docker.RemoteImage(
                f"{name}-{alias}-image", name=image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
            )
            created = docker.Container(
                f"{name}-{alias}",
                name=f"{settings.name_prefix}-{alias}",
                image=remote.image_id,
                healthcheck=check,
                networks_advanced=networks,
                **managed_container(settings, alias, memory_mb=MEMORY_MB),
                **inputs,  # type: ignore[arg-type]
                opts=container_options(self, fixed_name=True, depends_on=args.wait_for),
            )
            self.container_names[alias] = created.name

        container(
            "postgres-exporter",
            mon.postgres_exporter_image,
            _http_check(PORTS["postgres-exporter"]),
            envs=pulumi.Output.secret(
                args.monitor_password if args.monitor_password is not None else args.postgres_password
            ).apply(
                lambda pw: [
                    "DATA_SOURCE_NAME="
                    + postgres_dsn(pg.monitor_user if args.monitor_password is not None else pg.user, pw, pg.database)
                ]
            ),
        )
        container(
            "redis-exporter",
            mon.redis_exporter_image,
            _http_check(PORTS["redis-exporter"]),
            envs=pulumi.Output.secret(args.redis_password).apply(
                lambda pw: [
                    f"REDIS_ADDR=redis://{REDIS_ALIAS}:{REDIS_PORT}",
                    # Its own ACL user (rendering/redis.py): INFO and CONFIG GET, which the API's
                    # default user no longer has (@dangerous/@admin).
                    f"REDIS_USER={EXPORTER_USER}",
                    f"REDIS_PASSWORD={pw}",
                ]
            ),
        )
        container(
            "nginx-exporter",
            mon.nginx_exporter_image,
            healthcheck(["CMD", NGINX_EXPORTER_BINARY, "--version"]),
            command=[f"--nginx.scrape-uri=http://{NGINX_ALIAS}:{NGINX_STATUS_PORT}{STATUS_PATH}"],
            reads_nginx=True,
        )
        # With ACME and no CA bundle, no file: the probe trusts the system's roots, as browsers do.
        tls_ca = settings.tls.mode != "off" and args.cert_pem is not None
        uploads = [
            docker.ContainerUploadArgs(
                file=BLACKBOX_CONF,
                content=render_blackbox_yml(
                    settings.domain, BLACKBOX_CA if tls_ca else None, tls_on=settings.tls.mode != "off"
                ),
            )
        ]
        if tls_ca:
            assert args.cert_pem is not None
            uploads.append(docker.ContainerUploadArgs(file=BLACKBOX_CA, content=args.cert_pem))
        container(
            "blackbox-exporter",
            mon.blackbox_exporter_image,
            _http_check(PORTS["blackbox-exporter"]),
            command=[f"--config.file={BLACKBOX_CONF}"],
            uploads=uploads,
            reads_nginx=True,
        )
        self.register_outputs(dict(self.container_names))


def probe_url(settings: Settings) -> str:
    """What the blackbox exporter fetches: nginx on the network, presenting the public name."""
    if settings.tls.mode == "off":
        return f"http://{NGINX_ALIAS}:80/health"
    return f"https://{NGINX_ALIAS}:443/health"
