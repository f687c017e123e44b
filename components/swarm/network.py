"""Two encrypted overlay networks, split as on one host: `front` (nginx, the API) and `back`
(the API, PostgreSQL, Redis). The API is the one service on both.

`encrypted` makes the engines carry the overlay's VXLAN traffic between nodes in IPsec ESP
(moby libnetwork, drivers/overlay: the "encrypted" network option). Not `attachable`: only the
stack's services join, never a stray `docker run --network`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import labels
from settings import Settings

OVERLAY_OPTIONS = {"encrypted": "true"}


@dataclass(frozen=True)
class SwarmNetworkArgs:
    settings: Settings


class SwarmNetwork(pulumi.ComponentResource):
    # Network IDs: the provider's service `networks_advanced.name` is deprecated and "will lead to
    # constant replacements" (TF resource_docker_service.go schema); services attach by `id`.
    front: pulumi.Output[str]
    back: pulumi.Output[str]
    front_name: pulumi.Output[str]
    back_name: pulumi.Output[str]

    def __init__(self, name: str, args: SwarmNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:network:SwarmNetwork", name, None, opts)
        prefix = args.settings.name_prefix
        networks = {}
        for side in ("front", "back"):
            networks[side] = docker.Network(
                f"{name}-{side}",
                name=f"{prefix}-{side}",
                driver="overlay",
                options=OVERLAY_OPTIONS if args.settings.cluster.encrypted_overlay else None,
                labels=labels(args.settings, f"network-{side}"),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.front, self.back = networks["front"].id, networks["back"].id
        self.front_name, self.back_name = networks["front"].name, networks["back"].name
        self.register_outputs({"front": self.front_name, "back": self.back_name})
