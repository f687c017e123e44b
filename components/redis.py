"""Redis: password-protected cache with append-only persistence on its own volume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import container_options, healthcheck, managed_container
from rendering.redis import CONF_PATH, DATA_DIR, render_redis_conf
from settings import REDIS_PORT, Settings

NETWORK_ALIAS = "redis"


@dataclass(frozen=True)
class RedisArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    volume_name: pulumi.Input[str]
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
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-redis",
            image=image.image_id,
            # The password lives in an uploaded file, not on the command line where `ps` shows it.
            command=["redis-server", CONF_PATH],
            uploads=[
                docker.ContainerUploadArgs(
                    file=CONF_PATH,
                    content=password.apply(lambda pw: render_redis_conf(pw, redis.memory_mb)),
                )
            ],
            # redis-cli reads REDISCLI_AUTH, so the health check authenticates without argv.
            envs=password.apply(lambda pw: [f"REDISCLI_AUTH={pw}"]),
            healthcheck=healthcheck(["CMD-SHELL", "redis-cli ping | grep -q PONG"]),
            mounts=[docker.ContainerMountArgs(target=DATA_DIR, type="volume", source=args.volume_name)],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[NETWORK_ALIAS])],
            ports=ports,
            **managed_container(settings, "redis", memory_mb=redis.memory_mb),
            opts=container_options(self, fixed_name=True, depends_on=args.wait_for),
        )
        self.container_name = self.container.name
        self.register_outputs({"container_name": self.container_name})
