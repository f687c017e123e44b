"""PostgreSQL and Redis as Swarm services pinned to the node labelled catalogizer.data=true.

Their volumes live on that node, so they are declared through a second Docker provider that
talks to it (catalogizer:cluster.dataNodeHost), protected and retained as on one host. One replica
each, `stop-first`: a database must never run twice on the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import labels
from components.postgres import DATA_DIR as PG_DATA_DIR
from components.postgres import NETWORK_ALIAS as POSTGRES_ALIAS
from components.postgres import SERVER_COMMAND as PG_SERVER_COMMAND
from components.postgres import STOP_GRACE_SECONDS, health_probe, server_environment, server_user
from components.redis import HEALTH_PROBE as REDIS_HEALTH_PROBE
from components.redis import NETWORK_ALIAS as REDIS_ALIAS
from components.redis import SERVER_COMMAND as REDIS_SERVER_COMMAND
from components.redis import cli_environment
from components.swarm.secrets import secret_file, swarm_secret
from components.swarm.task_defaults import (
    converge,
    declare_service,
    hardened_container_spec,
    healthcheck,
    internal_endpoint,
    service_labels,
    task_spec,
)
from rendering.redis import CONF_PATH, render_redis_conf
from rendering.redis import DATA_DIR as REDIS_DATA_DIR
from settings import NODE_LABEL_DATA, Settings

ON_DATA_NODE = f"node.labels.{NODE_LABEL_DATA}==true"
# Swarm mounts secrets under /run/secrets/ unless the target is absolute.
PG_PASSWORD_FILE = "/run/secrets/postgres-superuser-password"
# PostgreSQL's shared memory: the single-host container's shm_size (256 MB); a service has no
# shm_size input, so a tmpfs at /dev/shm of that size.
SHM_BYTES = 256 * 1024 * 1024


def one_at_a_time() -> docker.ServiceUpdateConfigArgs:
    return docker.ServiceUpdateConfigArgs(parallelism=1, order="stop-first", failure_action="pause")


@dataclass(frozen=True)
class SwarmDataArgs:
    settings: Settings
    back_network: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    redis_password: pulumi.Input[str]
    # Runs first: the swarm preflight.
    wait_for: Sequence[pulumi.Resource] = ()


class SwarmData(pulumi.ComponentResource):
    postgres: docker.Service
    redis: docker.Service
    postgres_service: pulumi.Output[str]
    redis_service: pulumi.Output[str]
    volumes: dict[str, pulumi.Output[str]]
    # Per role, changes with the service's spec (task_defaults.declare_service): e.g. a new redis.conf.
    revisions: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SwarmDataArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:data:SwarmData", name, None, opts)
        settings = args.settings
        prefix = settings.name_prefix
        assert settings.cluster.data_node_host is not None
        data_node = docker.Provider(
            f"{name}-data-node", host=settings.cluster.data_node_host, opts=pulumi.ResourceOptions(parent=self)
        )
        volumes: dict[str, docker.Volume] = {}
        for role in ("postgres-data", "redis-data"):
            volumes[role] = docker.Volume(
                f"{name}-{role}",
                name=f"{prefix}-{role}",
                labels=labels(settings, role),
                # A database must never go away as a side effect of an update or a destroy.
                opts=pulumi.ResourceOptions(parent=self, provider=data_node, protect=True, retain_on_delete=True),
            )
        self.volumes = {role: volume.name for role, volume in volumes.items()}
        back = [docker.ServiceTaskSpecNetworksAdvancedArgs(id=args.back_network, aliases=[POSTGRES_ALIAS])]
        pg = settings.postgres
        pg_secret = swarm_secret(
            settings, f"{name}-postgres-password", "postgres-password", args.postgres_password, self
        )
        self.postgres, postgres_revision = declare_service(
            f"{name}-postgres",
            name=f"{prefix}-postgres",
            labels=service_labels(settings, "postgres"),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
            task_spec=task_spec(
                settings,
                "postgres",
                hardened_container_spec(
                    "postgres",
                    image=pg.image,
                    user=server_user(pg.image),
                    # The image's entrypoint reads the password file (file_env, docker-library/postgres).
                    env=server_environment(pg, PG_PASSWORD_FILE),
                    args=list(PG_SERVER_COMMAND),
                    healthcheck=healthcheck(health_probe(pg)),
                    stop_signal="SIGINT",
                    stop_grace_period=f"{STOP_GRACE_SECONDS}s",
                    secrets=[secret_file(pg_secret, PG_PASSWORD_FILE)],
                    mounts=[
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target=PG_DATA_DIR, type="volume", source=volumes["postgres-data"].name
                        ),
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target="/dev/shm",
                            type="tmpfs",
                            tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
                                size_bytes=SHM_BYTES, mode=0o1777
                            ),
                        ),
                    ],
                ),
                memory_mb=pg.memory_mb,
                cpus=pg.cpus,
                networks=back,
                constraints=[ON_DATA_NODE],
            ),
            endpoint_spec=internal_endpoint(),
            update_config=one_at_a_time(),
            converge_config=converge(settings),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.wait_for, volumes["postgres-data"]]),
        )
        redis = settings.redis
        password = pulumi.Output.secret(args.redis_password)
        # redis.conf holds the ACL user's password hash, so it is a secret, not a config.
        conf = swarm_secret(
            settings,
            f"{name}-redis-conf",
            "redis-conf",
            password.apply(lambda pw: render_redis_conf(pw, redis.memory_mb)),
            self,
        )
        self.redis, redis_revision = declare_service(
            f"{name}-redis",
            name=f"{prefix}-redis",
            labels=service_labels(settings, "redis"),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
            task_spec=task_spec(
                settings,
                "redis",
                hardened_container_spec(
                    "redis",
                    image=redis.image,
                    args=list(REDIS_SERVER_COMMAND),
                    env=cli_environment(password),
                    healthcheck=healthcheck(REDIS_HEALTH_PROBE),
                    secrets=[secret_file(conf, CONF_PATH)],
                    mounts=[
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            target=REDIS_DATA_DIR, type="volume", source=volumes["redis-data"].name
                        )
                    ],
                ),
                memory_mb=redis.memory_mb,
                cpus=redis.cpus,
                networks=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=args.back_network, aliases=[REDIS_ALIAS])],
                constraints=[ON_DATA_NODE],
            ),
            endpoint_spec=internal_endpoint(),
            update_config=one_at_a_time(),
            converge_config=converge(settings),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.wait_for, volumes["redis-data"]]),
        )
        self.revisions = {"postgres": postgres_revision, "redis": redis_revision}
        self.postgres_service = self.postgres.name
        self.redis_service = self.redis.name
        self.register_outputs(
            {"postgres_service": self.postgres_service, "redis_service": self.redis_service, "volumes": self.volumes}
        )
