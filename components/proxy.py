"""nginx in front of the API: TLS termination, rate limits, WebSocket upgrade."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.api import NETWORK_ALIAS as API_ALIAS
from components.container_defaults import container_options, healthcheck, managed_container
from rendering.nginx import NginxSite, render_nginx_conf
from settings import API_PORT, Settings

CONF_PATH = "/etc/nginx/nginx.conf"
LOG_DIR = "/var/log/nginx"
MEMORY_MB = 256
HTTP_PORT = 80
HTTPS_PORT = 443
NETWORK_ALIAS = "nginx"
# stub_status for the nginx exporter, with monitoring on; inside the network only.
STATUS_PORT = 8081


def nginx_site(settings: Settings) -> NginxSite:
    return NginxSite(
        server_name=settings.domain,
        tls_enabled=settings.tls.mode != "off",
        hsts=settings.production,
        public_https_port=settings.proxy.https_port,
        api_host=API_ALIAS,
        api_port=API_PORT,
        http_listen_port=HTTP_PORT,
        https_listen_port=HTTPS_PORT,
        log_dir=LOG_DIR,
        status_port=STATUS_PORT if settings.monitoring.enabled else None,
    )


@dataclass(frozen=True)
class ProxyArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    logs_volume: pulumi.Input[str]
    cert_pem: pulumi.Input[str] | None
    key_pem: pulumi.Input[str] | None
    # Runs first: the preflight checks.
    wait_for: Sequence[pulumi.Resource] = ()


class Proxy(pulumi.ComponentResource):
    container: docker.Container
    container_name: pulumi.Output[str]

    def __init__(self, name: str, args: ProxyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:edge:Proxy", name, None, opts)
        settings = args.settings
        site = nginx_site(settings)
        image = docker.RemoteImage(
            f"{name}-image", name=settings.proxy.image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
        )
        # Delivered into the container, so the Docker host needs no files of ours.
        uploads = [docker.ContainerUploadArgs(file=CONF_PATH, content=render_nginx_conf(site))]
        ports = [docker.ContainerPortArgs(internal=HTTP_PORT, external=settings.proxy.http_port)]
        if site.tls_enabled:
            assert args.cert_pem is not None and args.key_pem is not None
            uploads += [
                docker.ContainerUploadArgs(file=site.cert_path, content=args.cert_pem),
                docker.ContainerUploadArgs(file=site.key_path, content=pulumi.Output.secret(args.key_pem)),
            ]
            ports.append(docker.ContainerPortArgs(internal=HTTPS_PORT, external=settings.proxy.https_port))
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-nginx",
            image=image.image_id,
            uploads=uploads,
            ports=ports,
            # nginx's own liveness, independent of whether an API container is up yet.
            healthcheck=healthcheck(
                ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{HTTP_PORT}/nginx-health"]
            ),
            mounts=[docker.ContainerMountArgs(target=LOG_DIR, type="volume", source=args.logs_volume)],
            # With monitoring the exporters reach nginx by this alias (components/exporters.py);
            # without, the network settings (which replace the container) stay as they were.
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.network_name, aliases=[NETWORK_ALIAS] if settings.monitoring.enabled else None
                )
            ],
            **managed_container(settings, "nginx", memory_mb=MEMORY_MB),
            opts=container_options(self, fixed_name=True, depends_on=args.wait_for),
        )
        self.container_name = self.container.name
        self.register_outputs({"container_name": self.container_name})
