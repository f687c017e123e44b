"""The private bridge network every container of the stack joins."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import labels
from settings import Settings


@dataclass(frozen=True)
class NetworkArgs:
    settings: Settings


class Network(pulumi.ComponentResource):
    name: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:network:Network", name, None, opts)
        network = docker.Network(
            f"{name}-bridge",
            name=f"{args.settings.name_prefix}-net",
            driver="bridge",
            labels=labels(args.settings, "network"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = network.name
        self.register_outputs({"name": self.name})
