"""The one place where single-host and Swarm deployments differ.

`catalogizer:cluster.mode` picks the topology; both read the same Settings, render the same
files (rendering/), call the same hook scripts (scripts/) and apply the same hardening table
(components/container_defaults.py). single.py declares containers on one Docker host,
swarm.py declares Swarm services on an existing cluster. Each returns the stack outputs.
"""

from __future__ import annotations

from components.topology import single, swarm
from settings import Settings


def deploy(settings: Settings) -> dict[str, object]:
    """Declares the stack for the configured topology; returns its outputs."""
    topology = swarm if settings.cluster.swarm else single
    return topology.deploy(settings)
