"""The API as a replicated Swarm service, its image pushed to the cluster's registry.

Updates are health-gated and `start-first`: Swarm starts the new task, waits until its health
check passes (only then is the task RUNNING and in the service's VIP), stops the old one, and
rolls the whole service back by itself when a new task fails (`failure_action: rollback`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.api import (
    HEALTH_PROBE,
    LABEL_RESTORE,
    LOGS_MOUNT,
    MEDIA_MOUNT,
    NETWORK_ALIAS,
    STOP_GRACE_SECONDS,
)
from components.swarm.task_defaults import (
    converge,
    declare_service,
    hardened_container_spec,
    healthcheck,
    internal_endpoint,
    service_labels,
    task_spec,
)
from settings import Settings

# How long Swarm watches each new task for failure before it counts the step as done; a task
# that turns unhealthy or exits inside it triggers the rollback.
UPDATE_MONITOR = "30s"


def api_service_name(settings: Settings) -> str:
    """Known before the service exists: the restore hook, which runs first, scales it by this name."""
    return f"{settings.name_prefix}-api"


def registry_image_ref(settings: Settings, version: str) -> str:
    """`<registry>/<prefix>-api:<version>`, the name the image is pushed under."""
    return f"{settings.cluster.registry}/{settings.name_prefix}-api:{version}"


@dataclass(frozen=True)
class PushedImageArgs:
    settings: Settings
    # The local image (ID) on the manager and its version tag.
    image_ref: pulumi.Input[str]
    version: str
    wait_for: Sequence[pulumi.Resource] = ()


class PushedImage(pulumi.ComponentResource):
    """Tags the built image for the registry and pushes it; `ref` names it by digest, so every
    node runs exactly these bytes and a re-pushed tag cannot change a running service."""

    ref: pulumi.Output[str]

    def __init__(self, name: str, args: PushedImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:app:PushedImage", name, None, opts)
        target = registry_image_ref(args.settings, args.version)
        tag = docker.Tag(
            f"{name}-tag",
            source_image=args.image_ref,
            target_image=target,
            tag_triggers=[args.image_ref],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for)),
        )
        cluster = args.settings.cluster
        assert cluster.registry is not None
        host = cluster.registry.split("/", 1)[0]
        pushed = docker.RegistryImage(
            f"{name}-push",
            name=tag.target_image,
            # Without a resource auth_config the provider needs a `docker:registryAuth` entry for this
            # registry and fails otherwise (TF resource_docker_registry_image_funcs.go
            # getAuthConfigForRegistry); the address's scheme is how it reads the digest back
            # (canonicalizeRegistryAddress: https:// unless http:// is given). No login: see docs.
            auth_config=docker.RegistryImageAuthConfigArgs(
                address=f"http://{host}" if cluster.registry_plain_http else host
            ),
            # Kept in the registry: a rollback or a rescheduled task on a new node pulls it again.
            keep_remotely=True,
            triggers={"image": args.image_ref},
            opts=pulumi.ResourceOptions(parent=self),
        )
        repository = target.rsplit(":", 1)[0]
        self.ref = pulumi.Output.concat(repository, "@", pushed.sha256_digest)
        self.register_outputs({"ref": self.ref})


@dataclass(frozen=True)
class SwarmApiArgs:
    settings: Settings
    image_ref: pulumi.Input[str]
    # The API's environment as api_environment() builds it ("NAME=value" strings).
    envs: pulumi.Input[list[str]]
    front_network: pulumi.Input[str]
    back_network: pulumi.Input[str]
    # PostgreSQL and Redis running, the pre-update backup and the API's role come first.
    wait_for: Sequence[pulumi.Resource]


class SwarmApi(pulumi.ComponentResource):
    service: docker.Service
    service_name: pulumi.Output[str]
    # Changes with the service's spec (task_defaults.declare_service): a new image, environment or restore.
    revision: pulumi.Output[str]

    def __init__(self, name: str, args: SwarmApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:app:SwarmApi", name, None, opts)
        settings = args.settings
        api = settings.api
        env = pulumi.Output.from_input(args.envs).apply(lambda items: dict(item.split("=", 1) for item in items))
        step = {"parallelism": 1, "order": "start-first", "monitor": UPDATE_MONITOR, "max_failure_ratio": "0"}
        restored = None
        if settings.restore is not None:
            # As on one host: a restore is followed by fresh API tasks. The restore hook left the service
            # at 0 replicas; this changed label makes `pulumi up` update the service, and the update sends
            # the declared replicas again (scripts/swarm_api.py cites the provider and swarmkit).
            restored = [
                docker.ServiceTaskSpecContainerSpecLabelArgs(label=LABEL_RESTORE, value=settings.restore.identity)
            ]
        self.service, self.revision = declare_service(
            f"{name}-service",
            name=api_service_name(settings),
            labels=service_labels(settings, "api"),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=api.replicas)),
            task_spec=task_spec(
                settings,
                "api",
                hardened_container_spec(
                    "api",
                    image=args.image_ref,
                    env=pulumi.Output.secret(env),
                    healthcheck=healthcheck(HEALTH_PROBE),
                    stop_grace_period=f"{STOP_GRACE_SECONDS}s",
                    labels=restored,
                    mounts=[
                        # The folder must exist on every node that may run the API (docs/operations.md).
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target=MEDIA_MOUNT, type="bind", source=str(api.media_root), read_only=True
                        ),
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target=LOGS_MOUNT, type="volume", source=f"{settings.name_prefix}-api-logs"
                        ),
                    ],
                ),
                memory_mb=api.memory_mb,
                cpus=api.cpus,
                networks=[
                    docker.ServiceTaskSpecNetworksAdvancedArgs(id=args.front_network, aliases=[NETWORK_ALIAS]),
                    docker.ServiceTaskSpecNetworksAdvancedArgs(id=args.back_network, aliases=[NETWORK_ALIAS]),
                ],
                spread=True,
            ),
            endpoint_spec=internal_endpoint(),
            update_config=docker.ServiceUpdateConfigArgs(**step, failure_action="rollback"),
            # A failing rollback stops where it is for the operator, rather than flapping.
            rollback_config=docker.ServiceRollbackConfigArgs(**step, failure_action="pause"),
            converge_config=converge(settings),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for)),
        )
        self.service_name = self.service.name
        self.register_outputs({"service_name": self.service_name})
