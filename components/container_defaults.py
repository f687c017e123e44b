"""What every container of the stack shares: labels, log rotation, limits, the health wait,
and the resource options that make replacements behave under the real engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from settings import LOG_MAX_FILE, LOG_MAX_SIZE, Settings

LABEL_STACK = "catalogizer.stack"
LABEL_ROLE = "catalogizer.role"

LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILE}

# Property paths whose change replaces a container instead of updating it in place:
# - "#initerror": a container that failed its health wait is recorded with an init error
#   (pulumi-terraform-bridge pkg/tfbridge/provider.go Create returns the partial state as
#   InitErrors). Without this, the next run's diff is empty and the engine silently accepts
#   the broken container; with it, applyReplaceOnChanges in pulumi/pulumi
#   pkg/resource/deploy/step_generator.go turns the init error into a replacement.
# - "healthcheck": terraform-provider-docker's resourceDockerContainerUpdate applies only
#   restart, memory and CPU settings, so an edited health check would never reach Docker.
REPLACE_ON_CHANGES = ["#initerror", "healthcheck"]


def labels(settings: Settings, role: str) -> list[dict[str, str]]:
    """Labels that let operators (and the hook scripts) find the stack's objects by role."""
    return [
        {"label": LABEL_STACK, "value": settings.name_prefix},
        {"label": LABEL_ROLE, "value": role},
    ]


def managed_container(
    settings: Settings, role: str, *extra_labels: dict[str, str], memory_mb: int
) -> dict[str, Any]:
    """Container inputs every container of the stack gets."""
    return {
        "labels": [*labels(settings, role), *extra_labels],
        "log_driver": LOG_DRIVER,
        "log_opts": LOG_OPTS,
        "restart": "unless-stopped",
        "memory": memory_mb,
        # Unset, Docker stores MemorySwap = 2 x Memory, the provider reads it back (a diff on
        # every run) and a later raise of `memory` above it fails; equal means no swap at all.
        "memory_swap": memory_mb,
        # `pulumi up` fails unless Docker reports the container healthy within the timeout.
        "wait": True,
        "wait_timeout": settings.health.wait_timeout_seconds,
    }


def container_options(
    parent: pulumi.Resource, *, fixed_name: bool, depends_on: Sequence[pulumi.Resource] = ()
) -> pulumi.ResourceOptions:
    """Replacement order is always explicit: pulumi-docker registers docker_container with
    DeleteBeforeReplace: true (provider/resources.go), and the engine follows the provider
    unless the program sets the option itself (deleteBeforeReplaceDefined).

    A fixed name or host port can exist only once, so those containers go first; the API
    containers have neither, so their replacement is healthy before the old one is deleted.
    """
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=list(depends_on),
        delete_before_replace=fixed_name,
        replace_on_changes=REPLACE_ON_CHANGES,
    )


def healthcheck(
    test: list[str], interval: int = 5, retries: int = 12, start_period: int = 10
) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=test,
        interval=f"{interval}s",
        timeout="5s",
        retries=retries,
        start_period=f"{start_period}s",
    )
