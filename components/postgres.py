"""PostgreSQL: the catalog's database, health-checked and reachable only inside the network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import container_options, healthcheck, managed_container
from settings import POSTGRES_PORT, Settings

DATA_DIR = "/var/lib/postgresql/data"
# A subfolder, so initdb never trips over the volume root's lost+found or ownership.
PGDATA = f"{DATA_DIR}/pgdata"
NETWORK_ALIAS = "postgres"
# Time for a clean shutdown (checkpoint) before Docker kills the server.
STOP_GRACE_SECONDS = 60


@dataclass(frozen=True)
class PostgresArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    volume_name: pulumi.Input[str]
    password: pulumi.Input[str]
    # Runs first: the preflight checks.
    wait_for: Sequence[pulumi.Resource] = ()


class Postgres(pulumi.ComponentResource):
    container_name: pulumi.Output[str]
    container: docker.Container

    def __init__(self, name: str, args: PostgresArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:data:Postgres", name, None, opts)
        settings = args.settings
        pg = settings.postgres
        image = docker.RemoteImage(
            f"{name}-image",
            name=pg.image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        ports = []
        if pg.host_port is not None:
            # Loopback only: the database is for operators on the host, never for the outside.
            ports.append(docker.ContainerPortArgs(internal=POSTGRES_PORT, external=pg.host_port, ip="127.0.0.1"))
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-postgres",
            image=image.image_id,
            envs=pulumi.Output.all(args.password).apply(
                lambda values: [
                    f"POSTGRES_USER={pg.user}",
                    f"POSTGRES_PASSWORD={values[0]}",
                    f"POSTGRES_DB={pg.database}",
                    f"PGDATA={PGDATA}",
                ]
            ),
            # pg_stat_statements backs the runbook's slow-query check.
            command=[
                "postgres",
                "-c",
                "shared_preload_libraries=pg_stat_statements",
                "-c",
                "pg_stat_statements.track=all",
            ],
            # Over TCP: the entrypoint's temporary init server listens on the socket only, and
            # must not count as "healthy" (it shuts down again right after initdb).
            healthcheck=healthcheck(
                ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", pg.user, "-d", pg.database], start_period=30
            ),
            shm_size=256,
            # SIGINT is PostgreSQL's "fast" shutdown: it checkpoints, then exits.
            stop_signal="SIGINT",
            stop_timeout=STOP_GRACE_SECONDS,
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            mounts=[docker.ContainerMountArgs(target=DATA_DIR, type="volume", source=args.volume_name)],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[NETWORK_ALIAS])],
            ports=ports,
            **managed_container(settings, "postgres", memory_mb=pg.memory_mb),
            opts=container_options(self, fixed_name=True, depends_on=args.wait_for),
        )
        self.container_name = self.container.name
        self.register_outputs({"container_name": self.container_name})
