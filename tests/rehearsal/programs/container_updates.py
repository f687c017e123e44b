"""One fixed-name container whose inputs come from config, for the provider-rule tests.

Config (namespace `rules`): `name`, `image`, `command` (JSON list), `interval` (health check),
`memory`, `memorySwap` (MB), `hostDir` (bind-mounted read-only at /data through `volumes`),
`replaceOnHealthcheck` and `deleteFirst` ("true"/"false"/unset: the resource options).
"""

import json

import pulumi
import pulumi_docker as docker

config = pulumi.Config("rules")
delete_first = config.get("deleteFirst")
docker.Container(
    "box",
    name=config.require("name"),
    image=config.require("image"),
    command=json.loads(config.require("command")),
    healthcheck=docker.ContainerHealthcheckArgs(tests=["CMD", "true"], interval=config.require("interval"), retries=1),
    memory=config.require_int("memory"),
    memory_swap=config.require_int("memorySwap"),
    volumes=[docker.ContainerVolumeArgs(host_path=config.require("hostDir"), container_path="/data", read_only=True)],
    destroy_grace_seconds=1,
    opts=pulumi.ResourceOptions(
        replace_on_changes=["healthcheck"] if config.get_bool("replaceOnHealthcheck") else None,
        delete_before_replace=None if delete_first is None else delete_first == "true",
    ),
)
