"""Named volumes; the ones holding data are protected and survive `pulumi destroy`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import labels
from settings import Settings


@dataclass(frozen=True)
class VolumesArgs:
    settings: Settings


class Volumes(pulumi.ComponentResource):
    """Volume names by role, e.g. ``names["postgres-data"]``."""

    names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: VolumesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:storage:Volumes", name, None, opts)
        settings = args.settings
        data_roles = ["postgres-data", "redis-data"]
        if settings.monitoring.enabled:
            data_roles += ["prometheus-data", "grafana-data"]
        if settings.tls.mode == "acme":
            # The ACME account key: losing it means a new account, and re-issuing counts
            # against the CA's rate limits (docs/operations.md).
            data_roles.append("acme-data")
        log_roles = ["api-logs", "nginx-logs"]
        # Where uploads go for containers with a read-only root filesystem: Docker refuses an
        # archive upload into a read-only rootfs but accepts one into a writable volume
        # (daemon: ErrRootFSReadOnly unless the path is in a volume). Rewritten on every
        # create, so not protected; nginx-config is written by the proxy hook on every change.
        config_roles = ["nginx-config", "redis-config", "postgres-config"]
        if settings.tls.mode == "acme":
            # The served certificate (the sidecar rewrites it from acme-data) and the challenge webroot.
            config_roles += ["acme-certs", "acme-challenge"]
        self.names = {}
        for role in data_roles + log_roles + config_roles:
            is_data = role in data_roles
            volume = docker.Volume(
                f"{name}-{role}",
                name=f"{settings.name_prefix}-{role}",
                labels=labels(settings, role),
                # A database must never go away as a side effect of an update or a destroy.
                opts=pulumi.ResourceOptions(parent=self, protect=is_data, retain_on_delete=is_data),
            )
            self.names[role] = volume.name
        self.register_outputs(dict(self.names))
