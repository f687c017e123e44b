"""Two bridge networks: `front` (nginx and the API) and `back` (the API and everything behind it).

nginx is on `front` only, so a compromised proxy cannot even open a TCP connection to
PostgreSQL or Redis; the API is the one container on both. `back` is not `internal`: Docker
publishes no ports for containers on an internal network, and Postgres, Redis, Prometheus and
Grafana may publish an operator port on 127.0.0.1.
"""

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
    front: pulumi.Output[str]
    back: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:network:Network", name, None, opts)
        prefix = args.settings.name_prefix
        front = docker.Network(
            f"{name}-front",
            name=f"{prefix}-front",
            driver="bridge",
            labels=labels(args.settings, "network-front"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        back = docker.Network(
            # The former single network's resource name: an existing stack replaces it in place.
            f"{name}-bridge",
            name=f"{prefix}-back",
            driver="bridge",
            labels=labels(args.settings, "network-back"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.front = front.name
        self.back = back.name
        self.register_outputs({"front": self.front, "back": self.back})
