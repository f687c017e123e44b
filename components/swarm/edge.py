"""nginx on every node labelled catalogizer.edge=true, publishing 80/443 in host mode.

Host mode binds the node's own ports (no routing mesh), so nginx sees each client's real address
and an edge node answers only with its own nginx. The configuration is the single-host one, from
the same renderer, pointed at the API service's alias; it reaches the tasks as Swarm configs (the
key as a secret). A new configuration is a new config (auto-named) and a service update, one edge
node at a time, `stop-first`: a node's host port can be bound by one task only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.proxy import (
    CERT_FILE,
    HEALTH_PROBE,
    HTTP_PORT,
    HTTPS_PORT,
    KEY_FILE,
    LIVE_CONF,
    LOG_DIR,
    MEMORY_MB,
    nginx_site,
    render_live_conf,
)
from components.swarm.secrets import config_file, secret_file, swarm_config, swarm_secret
from components.swarm.task_defaults import (
    declare_service,
    hardened_container_spec,
    healthcheck,
    service_labels,
    task_spec,
)
from settings import NODE_LABEL_EDGE, Settings

ON_EDGE_NODES = f"node.labels.{NODE_LABEL_EDGE}==true"
# nginx.conf resolves the certificate paths against its own folder (components/proxy.py).
LIVE_FOLDER = LIVE_CONF.rsplit("/", 1)[0]


@dataclass(frozen=True)
class SwarmEdgeArgs:
    settings: Settings
    front_network: pulumi.Input[str]
    cert_pem: pulumi.Input[str] | None
    key_pem: pulumi.Input[str] | None
    # The API service: nginx starts once it runs.
    wait_for: Sequence[pulumi.Resource] = ()


class SwarmEdge(pulumi.ComponentResource):
    service: docker.Service
    service_name: pulumi.Output[str]
    # Changes with the service's spec: a new nginx.conf, certificate or key is a new config or secret.
    revision: pulumi.Output[str]

    def __init__(self, name: str, args: SwarmEdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:edge:SwarmEdge", name, None, opts)
        settings = args.settings
        tls_enabled = settings.tls.mode != "off"
        cert_pem = pulumi.Output.from_input(args.cert_pem if tls_enabled else "")
        conf = swarm_config(
            settings,
            f"{name}-nginx-conf",
            "nginx-conf",
            cert_pem.apply(lambda pem: render_live_conf(nginx_site(settings), pem)[0]),
            self,
        )
        configs = [config_file(conf, LIVE_CONF)]
        secrets = []
        ports = [
            docker.ServiceEndpointSpecPortArgs(
                target_port=HTTP_PORT, published_port=settings.proxy.http_port, publish_mode="host"
            )
        ]
        if tls_enabled:
            assert args.cert_pem is not None and args.key_pem is not None
            cert = swarm_config(settings, f"{name}-tls-cert", "tls-cert", args.cert_pem, self)
            key = swarm_secret(settings, f"{name}-tls-key", "tls-key", args.key_pem, self)
            configs.append(config_file(cert, f"{LIVE_FOLDER}/{CERT_FILE}"))
            # Root's only: the master reads it before it starts the workers (as on one host).
            secrets.append(secret_file(key, f"{LIVE_FOLDER}/{KEY_FILE}", mode=0o400))
            ports.append(
                docker.ServiceEndpointSpecPortArgs(
                    target_port=HTTPS_PORT, published_port=settings.proxy.https_port, publish_mode="host"
                )
            )
        self.service, self.revision = declare_service(
            f"{name}-service",
            name=f"{settings.name_prefix}-nginx",
            labels=service_labels(settings, "nginx"),
            # One task on every edge node. The provider cannot wait for a global service
            # (converge_config ConflictsWith mode.0.global, TF resource_docker_service.go): the
            # swarm health hook waits for it instead.
            mode=docker.ServiceModeArgs(global_=True),
            endpoint_spec=docker.ServiceEndpointSpecArgs(ports=ports),
            task_spec=task_spec(
                settings,
                "nginx",
                hardened_container_spec(
                    "nginx",
                    image=settings.proxy.image,
                    args=["nginx", "-c", LIVE_CONF, "-g", "daemon off;"],
                    healthcheck=healthcheck(HEALTH_PROBE),
                    configs=configs,
                    secrets=secrets or None,
                    mounts=[
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target=LOG_DIR, type="volume", source=f"{settings.name_prefix}-nginx-logs"
                        )
                    ],
                ),
                memory_mb=MEMORY_MB,
                cpus=settings.proxy.cpus,
                networks=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=args.front_network)],
                constraints=[ON_EDGE_NODES],
            ),
            update_config=docker.ServiceUpdateConfigArgs(
                parallelism=1, order="stop-first", failure_action="rollback", monitor="10s"
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for)),
        )
        self.service_name = self.service.name
        self.register_outputs({"service_name": self.service_name})
