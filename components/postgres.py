"""PostgreSQL: the catalog's database, health-checked and reachable only inside the network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import (
    HealthProbe,
    config_carrier,
    container_healthcheck,
    container_options,
    env_list,
    managed_container,
)
from settings import POSTGRES_PORT, PostgresSettings, Settings

DATA_DIR = "/var/lib/postgresql/data"
# A subfolder, so initdb never trips over the volume root's lost+found or ownership.
PGDATA = f"{DATA_DIR}/pgdata"
NETWORK_ALIAS = "postgres"
# The superuser's password as a file (the image's entrypoint reads POSTGRES_PASSWORD_FILE through
# its file_env, docker-library/postgres docker-entrypoint.sh), so it is not in `docker inspect`.
CONFIG_DIR = "/etc/catalogizer-postgres"
PASSWORD_FILE = f"{CONFIG_DIR}/superuser-password"
# No `trust` for a new cluster: upstream passes no --auth to initdb, whose default is trust for
# the local socket and 127.0.0.1; scram-sha-256 everywhere instead. The entrypoint exports
# PGPASSWORD for its own init-time psql calls, so initialisation still works.
INITDB_ARGS = "--auth-local=scram-sha-256 --auth-host=scram-sha-256"


def postgres_uid(image: str) -> int:
    """The image's postgres user: 70 in the alpine variants (`adduser -u 70 ... postgres`), 999 in
    the Debian ones (`useradd ... --uid=999 ... postgres`), per docker-library/postgres' Dockerfiles."""
    return 70 if "alpine" in image.rsplit("/", 1)[-1] else 999


# pg_stat_statements backs the runbook's slow-query check.
SERVER_COMMAND = (
    "postgres",
    "-c",
    "shared_preload_libraries=pg_stat_statements",
    "-c",
    "pg_stat_statements.track=all",
)


def health_probe(pg: PostgresSettings) -> HealthProbe:
    """Over TCP: the entrypoint's temporary init server listens on the socket only, and must not
    count as "healthy" (it shuts down again right after initdb). 30 s to start: initdb on a new volume."""
    return HealthProbe(("CMD", "pg_isready", "-h", "127.0.0.1", "-U", pg.user, "-d", pg.database), start_period=30)


def server_environment(pg: PostgresSettings, password_file: str) -> dict[str, str]:
    """What the image's entrypoint reads, on one host and as a Swarm service: the superuser's
    password only as a file (`password_file`, where that topology mounts it)."""
    return {
        "POSTGRES_USER": pg.user,
        "POSTGRES_PASSWORD_FILE": password_file,
        "POSTGRES_DB": pg.database,
        "PGDATA": PGDATA,
        "POSTGRES_INITDB_ARGS": INITDB_ARGS,
    }


def server_user(image: str) -> str:
    """The image's postgres uid with group 0, which reads the root-owned 0640/0440 password file."""
    return f"{postgres_uid(image)}:0"


# Time for a clean shutdown (checkpoint) before Docker kills the server.
STOP_GRACE_SECONDS = 60


@dataclass(frozen=True)
class PostgresArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    volume_name: pulumi.Input[str]
    config_volume: pulumi.Input[str]
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
        password_file = docker.ContainerUploadArgs(
            file=PASSWORD_FILE, content=pulumi.Output.secret(args.password), permissions="0640"
        )
        carrier, config_label = config_carrier(
            settings,
            "postgres",
            image=image.image_id,
            volume=args.config_volume,
            directory=CONFIG_DIR,
            uploads=[password_file],
            parent=self,
        )
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-postgres",
            image=image.image_id,
            envs=env_list(server_environment(pg, PASSWORD_FILE)),
            # The provider writes uploads as root:root (its tar headers carry no owner), so the
            # file is 0640 and the server runs as its own uid with group root: the entrypoint
            # reads the file again after it would have dropped privileges (upstream file_env).
            user=server_user(pg.image),
            command=list(SERVER_COMMAND),
            healthcheck=container_healthcheck(health_probe(pg)),
            shm_size=256,
            # SIGINT is PostgreSQL's "fast" shutdown: it checkpoints, then exits.
            stop_signal="SIGINT",
            stop_timeout=STOP_GRACE_SECONDS,
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            mounts=[
                docker.ContainerMountArgs(target=DATA_DIR, type="volume", source=args.volume_name),
                docker.ContainerMountArgs(target=CONFIG_DIR, type="volume", source=args.config_volume, read_only=True),
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[NETWORK_ALIAS])],
            ports=ports,
            **managed_container(settings, "postgres", config_label, memory_mb=pg.memory_mb, cpus=pg.cpus),
            opts=container_options(self, fixed_name=True, depends_on=[*args.wait_for, carrier]),
        )
        self.container_name = self.container.name
        self.register_outputs({"container_name": self.container_name})
