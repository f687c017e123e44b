"""The Catalogizer API containers: health-gated, replaceable without downtime."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import HealthProbe, container_healthcheck, container_options, managed_container
from components.postgres import NETWORK_ALIAS as POSTGRES_ALIAS
from components.redis import NETWORK_ALIAS as REDIS_ALIAS
from settings import API_PORT, POSTGRES_PORT, REDIS_PORT, Settings

NETWORK_ALIAS = "api"
MEDIA_MOUNT = "/media"
LOGS_MOUNT = "/app/logs"
HEALTH_PATH = "/health"
LABEL_REPLICA = "catalogizer.replica"
LABEL_RESTORE = "catalogizer.restored-from"
# The runtime image has wget but no curl. GET, never `--spider`: wget's spider sends HEAD, which Gin
# answers 404 on GET-only routes (catalog-api/main.go registers /health for GET). Every 2 s: the
# switch of traffic (one host) and a start-first update step (Swarm) wait for the first passing probe.
HEALTH_PROBE = HealthProbe(
    ("CMD", "wget", "-q", "-O", "/dev/null", f"http://localhost:{API_PORT}{HEALTH_PATH}"),
    interval=2,
    retries=30,
    start_period=20,
)
# Time the API gets to finish its requests before it is killed, on one host and in Swarm.
STOP_GRACE_SECONDS = 30


@dataclass(frozen=True)
class ApiSecrets:
    postgres_password: pulumi.Input[str]
    redis_password: pulumi.Input[str]
    jwt_secret: pulumi.Input[str]
    admin_password: pulumi.Input[str]


def api_environment(settings: Settings, secrets: ApiSecrets) -> pulumi.Output[list[str]]:
    """Every variable the API reads, plus the runbook's names so older builds work too."""
    api, pg = settings.api, settings.postgres
    plain = {
        # The API defaults to localhost, which nginx and Prometheus cannot reach.
        "HOST": "0.0.0.0",
        "PORT": str(API_PORT),
        "API_PORT": str(API_PORT),
        "APP_ENV": settings.app_env,
        "GIN_MODE": "release" if settings.app_env != "development" else "debug",
        "LOG_LEVEL": api.log_level,
        "DATABASE_TYPE": "postgres",
        "DATABASE_HOST": POSTGRES_ALIAS,
        "DATABASE_PORT": str(POSTGRES_PORT),
        "DATABASE_NAME": pg.database,
        # Its own role, never the superuser (issue 10): see scripts/db_roles.py.
        "DATABASE_USER": pg.api_user,
        "DATABASE_SSL_MODE": "disable",
        "POSTGRES_HOST": POSTGRES_ALIAS,
        "POSTGRES_PORT": str(POSTGRES_PORT),
        "POSTGRES_DB": pg.database,
        "POSTGRES_USER": pg.api_user,
        "REDIS_ADDR": f"{REDIS_ALIAS}:{REDIS_PORT}",
        "REDIS_HOST": REDIS_ALIAS,
        "REDIS_PORT": str(REDIS_PORT),
        "ADMIN_USERNAME": api.admin_username,
        "CORS_ENABLED": "true" if api.cors_origins else "false",
        "CORS_ALLOWED_ORIGINS": ",".join(api.cors_origins),
        "SMB_ENABLED": "true",
        "MEDIA_ROOT_PATH": MEDIA_MOUNT,
    }
    return pulumi.Output.all(
        secrets.postgres_password, secrets.redis_password, secrets.jwt_secret, secrets.admin_password
    ).apply(
        lambda values: (
            [f"{k}={v}" for k, v in plain.items()]
            + [
                f"DATABASE_PASSWORD={values[0]}",
                f"POSTGRES_PASSWORD={values[0]}",
                f"REDIS_PASSWORD={values[1]}",
                f"JWT_SECRET={values[2]}",
                f"ADMIN_PASSWORD={values[3]}",
            ]
        )
    )


def version_alias(rollout: pulumi.Input[str], settings: Settings) -> pulumi.Output[str]:
    """The network alias of exactly this API version; nginx is switched to it once it is healthy.

    A restore replaces the containers too (their restore label), so it makes a new version: the
    dump's sha256, or `restic:<snapshot>` for an off-host one (which has no sha256 before the hook).
    """
    restored = settings.restore.identity if settings.restore is not None else ""
    alias = pulumi.Output.from_input(rollout).apply(
        lambda fingerprint: f"{NETWORK_ALIAS}-{hashlib.sha256((fingerprint + restored).encode()).hexdigest()[:12]}"
    )
    # 48 bits of a hash of a hash reveal nothing of the secrets in the environment.
    return pulumi.Output.unsecret(alias)


def rollout_fingerprint(image_ref: pulumi.Input[str], envs: pulumi.Input[list[str]]) -> pulumi.Output[str]:
    """Changes exactly when the API containers are replaced; the hooks use it as their trigger."""
    return pulumi.Output.all(image_ref, envs).apply(
        lambda values: hashlib.sha256("\n".join([values[0], *values[1]]).encode()).hexdigest()
    )


@dataclass(frozen=True)
class ApiArgs:
    settings: Settings
    image_ref: pulumi.Input[str]
    envs: pulumi.Input[list[str]]
    version_alias: pulumi.Input[str]
    # front: nginx reaches the API there, by its version alias; back: the API reaches Postgres
    # and Redis, and the exporters and Prometheus reach it.
    front_network: pulumi.Input[str]
    back_network: pulumi.Input[str]
    logs_volume: pulumi.Input[str]
    # Healthy Postgres and Redis, the pre-update backup and any restore come first.
    wait_for: Sequence[pulumi.Resource]


class Api(pulumi.ComponentResource):
    containers: list[docker.Container]
    container_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:app:Api", name, None, opts)
        settings = args.settings
        extra_labels = []
        if settings.restore is not None:
            # A restore must be followed by fresh API processes; a changed label forces that.
            extra_labels.append({"label": LABEL_RESTORE, "value": settings.restore.identity})
        self.containers = []
        for index in range(settings.api.replicas):
            container = docker.Container(
                # No fixed name or host port: the replacement is healthy before the old one is deleted.
                f"{settings.name_prefix}-api-{index}",
                image=args.image_ref,
                envs=args.envs,
                mounts=[
                    docker.ContainerMountArgs(
                        target=MEDIA_MOUNT, type="bind", source=str(settings.api.media_root), read_only=True
                    ),
                    docker.ContainerMountArgs(target=LOGS_MOUNT, type="volume", source=args.logs_volume),
                ],
                healthcheck=container_healthcheck(HEALTH_PROBE),
                stop_timeout=STOP_GRACE_SECONDS,
                destroy_grace_seconds=STOP_GRACE_SECONDS,
                networks_advanced=[
                    # `api` names every replica of every version (Prometheus scrapes them all);
                    # nginx sends traffic only to the version alias it was switched to, on front.
                    docker.ContainerNetworksAdvancedArgs(
                        name=args.front_network, aliases=[NETWORK_ALIAS, args.version_alias]
                    ),
                    docker.ContainerNetworksAdvancedArgs(name=args.back_network, aliases=[NETWORK_ALIAS]),
                ],
                **managed_container(
                    settings,
                    "api",
                    {"label": LABEL_REPLICA, "value": str(index)},
                    *extra_labels,
                    memory_mb=settings.api.memory_mb,
                    cpus=settings.api.cpus,
                ),
                opts=container_options(self, fixed_name=False, depends_on=args.wait_for),
            )
            self.containers.append(container)
        self.container_names = pulumi.Output.all(*[c.name for c in self.containers])
        self.register_outputs({"container_names": self.container_names})
