"""nginx in front of the API: TLS termination, rate limits, WebSocket upgrade.

The container is only the process and its ports. Its configuration (nginx.conf, the
certificate and key) lives in a volume and is applied by the `proxy-config` hook with
`nginx -t` and a reload: switching traffic to a new API version, a renewed certificate or
new limits never replace the container, so nginx keeps every connection it has.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.acme import CERTS_DIR as ACME_CERTS_DIR
from components.acme import SERVED_CERT as ACME_CERT
from components.acme import SERVED_KEY as ACME_KEY
from components.acme import WEBROOT as ACME_WEBROOT
from components.api import NETWORK_ALIAS as API_ALIAS
from components.container_defaults import HealthProbe, container_healthcheck, container_options, managed_container
from components.hook_support import docker_env, exported_summary, hook_command
from rendering.nginx import SELF_HEALTH_PATH, NginxSite, render_nginx_conf
from settings import API_PORT, Settings

LIVE_DIR = "/etc/nginx/live"
# nginx follows this symlink on every reload; the hook flips it between two slots.
LIVE_CONF = f"{LIVE_DIR}/current/nginx.conf"
MAINTENANCE_FLAG = f"{LIVE_DIR}/maintenance.on"
# Relative: nginx resolves them against the folder of the running nginx.conf (the slot).
CERT_FILE = "tls/cert.pem"
KEY_FILE = "tls/key.pem"
# A tmpfs (see HARDENING["nginx"]): the root filesystem is read-only, and explicit paths make
# the image's compiled-in temp paths irrelevant.
TEMP_DIR = "/var/cache/nginx"
LOG_DIR = "/var/log/nginx"
MEMORY_MB = 256
HTTP_PORT = 80
HTTPS_PORT = 443
SUMMARY_KEYS = ("configId", "slot", "reloaded", "maintenance", "seconds")
NETWORK_ALIAS = "nginx"
# nginx's own liveness, independent of whether an API container (or task) is up yet.
HEALTH_PROBE = HealthProbe(("CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{HTTP_PORT}{SELF_HEALTH_PATH}"))
# stub_status for the nginx exporter, with monitoring on; inside the network only.
STATUS_PORT = 8081


def nginx_site(settings: Settings, api_host: str = API_ALIAS) -> NginxSite:
    acme = settings.tls.mode == "acme"
    return NginxSite(
        server_name=settings.domain,
        tls_enabled=settings.tls.mode != "off",
        # Whenever TLS is on, staging included: a browser that once saw HTTPS never downgrades.
        hsts=True,
        hsts_include_subdomains=settings.tls.hsts_include_subdomains,
        ocsp_stapling=settings.tls.ocsp_responder,
        public_https_port=settings.proxy.https_port,
        api_host=api_host,
        api_port=API_PORT,
        http_listen_port=HTTP_PORT,
        https_listen_port=HTTPS_PORT,
        # With ACME the sidecar's volume: its renewals change the files, not nginx.conf.
        cert_path=ACME_CERT if acme else CERT_FILE,
        key_path=ACME_KEY if acme else KEY_FILE,
        acme_webroot=ACME_WEBROOT,
        log_dir=LOG_DIR,
        temp_dir=TEMP_DIR,
        maintenance_flag=MAINTENANCE_FLAG,
        status_port=STATUS_PORT if settings.monitoring.enabled else None,
    )


def render_live_conf(site: NginxSite, cert_pem: str) -> tuple[str, str]:
    """(nginx.conf, its id): the id covers the file and the certificate it serves."""
    digest = hashlib.sha256(render_nginx_conf(site).encode() + cert_pem.encode()).hexdigest()[:16]
    return render_nginx_conf(replace(site, config_id=digest)), digest


@dataclass(frozen=True)
class ProxyArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    logs_volume: pulumi.Input[str]
    config_volume: pulumi.Input[str]
    cert_pem: pulumi.Input[str] | None
    key_pem: pulumi.Input[str] | None
    # The network alias of the API version to serve; traffic moves to it with this run.
    api_alias: pulumi.Input[str]
    # Preflight, and the API containers of that version: they are healthy before traffic moves.
    wait_for: Sequence[pulumi.Resource] = ()
    # tls.mode=acme: the `acme-certs` and `acme-challenge` volumes (components/acme.py), read-only.
    acme_volumes: dict[str, pulumi.Input[str]] | None = None


class Proxy(pulumi.ComponentResource):
    container: docker.Container
    container_name: pulumi.Output[str]
    config: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: ProxyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:edge:Proxy", name, None, opts)
        settings = args.settings
        container_name = f"{settings.name_prefix}-nginx"
        image = docker.RemoteImage(
            f"{name}-image", name=settings.proxy.image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
        )
        tls_enabled = settings.tls.mode != "off"
        cert_pem = pulumi.Output.from_input(args.cert_pem if tls_enabled else "")
        live = pulumi.Output.all(args.api_alias, cert_pem).apply(
            lambda values: render_live_conf(nginx_site(settings, values[0]), values[1])
        )
        environment: dict[str, pulumi.Input[str]] = {
            "NGINX_VOLUME": args.config_volume,
            "NGINX_IMAGE": image.image_id,
            "NGINX_CONTAINER": container_name,
            "NGINX_CONF": live.apply(lambda pair: pair[0]),
            "NGINX_CONFIG_ID": live.apply(lambda pair: pair[1]),
            "NGINX_HTTP_PORT": str(HTTP_PORT),
            # The confirmation requests name the site: nginx drops any other Host (catch-all server).
            "NGINX_SERVER_NAME": settings.domain,
            "MAINTENANCE": "true" if settings.maintenance else "false",
            "PROXY_TIMEOUT": str(settings.health.timeout_seconds),
            **docker_env(settings),
        }
        if tls_enabled:
            assert args.cert_pem is not None and args.key_pem is not None
            environment["TLS_CERT_PEM"] = args.cert_pem
            environment["TLS_KEY_PEM"] = pulumi.Output.secret(args.key_pem)
        acme_mounts: list[docker.ContainerMountArgs] = []
        if args.acme_volumes is not None:
            # The bootstrap pair above is seeded there once, before the first ACME certificate.
            environment["NGINX_CERTS_VOLUME"] = args.acme_volumes["acme-certs"]
            acme_mounts = [
                docker.ContainerMountArgs(
                    target=ACME_CERTS_DIR, type="volume", source=args.acme_volumes["acme-certs"], read_only=True
                ),
                docker.ContainerMountArgs(
                    target=ACME_WEBROOT, type="volume", source=args.acme_volumes["acme-challenge"], read_only=True
                ),
            ]
        # Any change of its environment (a new API alias, certificate, limits, maintenance)
        # runs it again: it stages, tests, flips and reloads; on any failure nothing changes.
        self.config = hook_command(
            f"{name}-config",
            "proxy_config.py",
            environment=environment,
            triggers=[],
            parent=self,
            depends_on=[image, *args.wait_for],
        )
        ports = [docker.ContainerPortArgs(internal=HTTP_PORT, external=settings.proxy.http_port)]
        if tls_enabled:
            ports.append(docker.ContainerPortArgs(internal=HTTPS_PORT, external=settings.proxy.https_port))
        self.container = docker.Container(
            f"{name}-container",
            name=container_name,
            image=image.image_id,
            command=["nginx", "-c", LIVE_CONF, "-g", "daemon off;"],
            ports=ports,
            healthcheck=container_healthcheck(HEALTH_PROBE),
            mounts=[
                docker.ContainerMountArgs(target=LOG_DIR, type="volume", source=args.logs_volume),
                # Read-only: only the hook writes the configuration, from a container of its own.
                # The key is root's, 0600 in a 0700 folder: the master (root) reads it when it
                # loads the configuration, before it starts the workers (nginx docs, "Setting up
                # HTTPS servers"; a SIGHUP re-reads it in the master too), so no worker needs it.
                docker.ContainerMountArgs(target=LIVE_DIR, type="volume", source=args.config_volume, read_only=True),
                *acme_mounts,
            ],
            # With monitoring the exporters reach nginx by this alias (components/exporters.py);
            # without, the network settings (which replace the container) stay as they were.
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.network_name, aliases=[NETWORK_ALIAS] if settings.monitoring.enabled else None
                )
            ],
            **managed_container(settings, "nginx", memory_mb=MEMORY_MB, cpus=settings.proxy.cpus),
            opts=container_options(self, fixed_name=True, depends_on=[self.config]),
        )
        self.container_name = self.container.name
        self.summary = exported_summary(self.config.stdout, SUMMARY_KEYS)
        self.register_outputs({"container_name": self.container_name, "summary": self.summary})
