"""Scheduled backups: a sidecar that dumps on a cron schedule with the pre-update hook's code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.container_defaults import container_options, healthcheck, managed_container
from components.hook_support import PROJECT_DIR
from components.postgres import NETWORK_ALIAS as POSTGRES_ALIAS
from settings import Settings

DOCKERFILE = PROJECT_DIR / "dockerfiles" / "backup-scheduler" / "Dockerfile"
BACKUP_MOUNT = "/backups"
# A dump may run for a while; only one this late means the schedule is broken.
GRACE_SECONDS = 30 * 60
MEMORY_MB = 256
# Prometheus scrapes the scheduler's state here (scripts/scheduler_metrics.py).
NETWORK_ALIAS = "backup-scheduler"
METRICS_PORT = 9188


@dataclass(frozen=True)
class BackupSchedulerArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    wait_for: Sequence[pulumi.Resource]


class BackupScheduler(pulumi.ComponentResource):
    container: docker.Container

    def __init__(self, name: str, args: BackupSchedulerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:BackupScheduler", name, None, opts)
        settings = args.settings
        image = docker.Image(
            f"{name}-image",
            image_name=f"{settings.name_prefix}-backup-scheduler:latest",
            build=docker.DockerBuildArgs(
                context=str(PROJECT_DIR),
                dockerfile=str(DOCKERFILE),
                # The stack's own PostgreSQL image, so pg_dump always matches the server.
                args={"BASE_IMAGE": settings.postgres.image},
                platform=settings.api.platform,
            ),
            skip_push=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        pg = settings.postgres
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-backup-scheduler",
            image=image.repo_digest,
            envs=pulumi.Output.secret(args.postgres_password).apply(
                lambda password: [
                    f"PGHOST={POSTGRES_ALIAS}",
                    f"PGUSER={pg.user}",
                    f"PGDATABASE={pg.database}",
                    f"PGPASSWORD={password}",
                    f"BACKUP_DIR={BACKUP_MOUNT}",
                    f"BACKUP_KEEP={settings.backup.keep}",
                    f"BACKUP_SCHEDULE={settings.backup.schedule}",
                    f"BACKUP_GRACE_SECONDS={GRACE_SECONDS}",
                    f"STACK_NAME={settings.name_prefix}",
                    f"BACKUP_METRICS_PORT={METRICS_PORT}",
                ]
            ),
            volumes=[
                # Same folder as the pre-update dumps: one naming scheme, one retention.
                docker.ContainerVolumeArgs(host_path=str(settings.backup.dir), container_path=BACKUP_MOUNT),
                # The schedule is in host time, as the runbook's crontab was.
                docker.ContainerVolumeArgs(host_path="/etc/localtime", container_path="/etc/localtime", read_only=True),
            ],
            healthcheck=healthcheck(["CMD", "python3", "/app/backup_scheduler.py", "--check"], interval=30, retries=2),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[NETWORK_ALIAS])],
            **managed_container(settings, "backup-scheduler", memory_mb=MEMORY_MB),
            opts=container_options(self, fixed_name=True, depends_on=args.wait_for),
        )
        self.register_outputs({"container_name": self.container.name})
