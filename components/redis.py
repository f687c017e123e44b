"""Redis: password-protected cache with append-only persistence on its own volume."""

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
from rendering.redis import CONF_DIR, CONF_PATH, DATA_DIR, render_redis_conf
from settings import REDIS_PORT, Settings

NETWORK_ALIAS = "redis"
# The password lives in the config file, not on the command line where `ps` shows it.
SERVER_COMMAND = ("redis-server", CONF_PATH)
HEALTH_PROBE = HealthProbe(("CMD-SHELL", "redis-cli ping | grep -q PONG"))


def cli_environment(password: pulumi.Output[str]) -> pulumi.Output[dict[str, str]]:
    """redis-cli reads REDISCLI_AUTH, so the health check authenticates without argv."""
    return password.apply(lambda pw: {"REDISCLI_AUTH": pw})


@dataclass(frozen=True)
class RedisArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    volume_name: pulumi.Input[str]
    config_volume: pulumi.Input[str]
    password: pulumi.Input[str]
    # Runs first: the preflight checks.
    wait_for: Sequence[pulumi.Resource] = ()


class Redis(pulumi.ComponentResource):
    container_name: pulumi.Output[str]
    container: docker.Container

    def __init__(self, name: str, args: RedisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:data:Redis", name, None, opts)
        settings = args.settings
        redis = settings.redis
        image = docker.RemoteImage(
            f"{name}-image",
            name=redis.image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        password = pulumi.Output.secret(args.password)
        ports = []
        if redis.host_port is not None:
            ports.append(docker.ContainerPortArgs(internal=REDIS_PORT, external=redis.host_port, ip="127.0.0.1"))
        conf = docker.ContainerUploadArgs(
            file=CONF_PATH,
            content=password.apply(lambda pw: render_redis_conf(pw, redis.memory_mb)),
            # Root-owned (the provider's upload sets no owner), read by uid 999 through group 0.
            permissions="0640",
        )
        carrier, config_label = config_carrier(
            settings,
            "redis",
            image=image.image_id,
            volume=args.config_volume,
            directory=CONF_DIR,
            uploads=[conf],
            parent=self,
        )
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-redis",
            image=image.image_id,
            command=list(SERVER_COMMAND),
            envs=cli_environment(password).apply(env_list),
            healthcheck=container_healthcheck(HEALTH_PROBE),
            mounts=[
                docker.ContainerMountArgs(target=DATA_DIR, type="volume", source=args.volume_name),
                docker.ContainerMountArgs(target=CONF_DIR, type="volume", source=args.config_volume, read_only=True),
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[NETWORK_ALIAS])],
            ports=ports,
            **managed_container(settings, "redis", config_label, memory_mb=redis.memory_mb, cpus=redis.cpus),
            opts=container_options(self, fixed_name=True, depends_on=[*args.wait_for, carrier]),
        )
        self.container_name = self.container.name
        self.register_outputs({"container_name": self.container_name})
