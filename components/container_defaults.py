"""What every Docker object of the stack shares: identifying labels and log rotation."""

from __future__ import annotations

from typing import Any

import pulumi_docker as docker

from settings import LOG_MAX_FILE, LOG_MAX_SIZE, Settings

LABEL_STACK = "catalogizer.stack"
LABEL_ROLE = "catalogizer.role"

LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILE}


def labels(settings: Settings, role: str) -> list[dict[str, str]]:
    """Labels that let operators (and the hook scripts) find the stack's objects by role."""
    return [
        {"label": LABEL_STACK, "value": settings.name_prefix},
        {"label": LABEL_ROLE, "value": role},
    ]


def managed_container(settings: Settings, role: str, *extra_labels: dict[str, str]) -> dict[str, Any]:
    """What every container of the stack gets: labels, log rotation, restart after reboots."""
    return {
        "labels": [*labels(settings, role), *extra_labels],
        "log_driver": LOG_DRIVER,
        "log_opts": LOG_OPTS,
        "restart": "unless-stopped",
    }


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
