"""The one place where deployment topologies differ.

Every topology reads the same Settings, renders the same files (rendering/), calls the same hook
scripts (scripts/) and applies the same hardening table (components/container_defaults.py).
single.py declares containers on one Docker host. deploy() returns the stack outputs.
"""

from __future__ import annotations

from components.topology import single
from settings import Settings


def deploy(settings: Settings) -> dict[str, object]:
    """Declares the stack for the configured topology; returns its outputs."""
    return single.deploy(settings)
