"""Scheduled backups: a sidecar that dumps on a cron schedule with the pre-update hook's code."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.container_defaults import container_options, healthcheck, managed_container, sidecar_image
from components.hook_support import PROJECT_DIR
from components.postgres import NETWORK_ALIAS as POSTGRES_ALIAS
from settings import Settings

DOCKERFILE = PROJECT_DIR / "dockerfiles" / "backup-scheduler" / "Dockerfile"
BACKUP_MOUNT = "/backups"
# A dump may run for a while; only one this late means the schedule is broken.
GRACE_SECONDS = 30 * 60
MEMORY_MB = 256
# Share of the repository's data each scheduled check reads back and verifies (restic check
# --read-data-subset); over a few weeks of nightly runs every pack is read at least once.
CHECK_READ_DATA = "10%"
# Prometheus scrapes the scheduler's state here (scripts/scheduler_metrics.py).
NETWORK_ALIAS = "backup-scheduler"
METRICS_PORT = 9188


def folder_owner(folder: Path) -> str:
    """uid:gid the dumps must belong to: the backup folder's owner (the user running the hooks,
    who created it 0700), or this process's user before the folder exists. Writing as that
    user keeps the scheduler non-root whenever `pulumi up` itself is not run as root."""
    try:
        info = folder.stat()
        return f"{info.st_uid}:{info.st_gid}"
    except OSError:
        return f"{os.getuid()}:{os.getgid()}"


@dataclass(frozen=True)
class BackupSchedulerArgs:
    settings: Settings
    network_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    wait_for: Sequence[pulumi.Resource]
    repository_password: pulumi.Input[str] | None = None


class BackupScheduler(pulumi.ComponentResource):
    container: docker.Container

    def __init__(self, name: str, args: BackupSchedulerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:BackupScheduler", name, None, opts)
        settings = args.settings
        # On the stack's own PostgreSQL image, so pg_dump always matches the server.
        image = sidecar_image(
            settings, f"{name}-image", "backup-scheduler", DOCKERFILE, settings.postgres.image, parent=self
        )
        self.container = docker.Container(
            f"{name}-container",
            name=f"{settings.name_prefix}-backup-scheduler",
            image=image.repo_digest,
            envs=(
                pulumi.Output.secret(args.postgres_password).apply(lambda password: scheduler_env(settings, password))
                if settings.backup.offsite is None
                else pulumi.Output.all(args.postgres_password, args.repository_password).apply(
                    lambda values: pulumi.Output.secret(scheduler_env(settings, values[0], values[1]))
                )
            ),
            volumes=[
                # Same folder as the pre-update dumps: one naming scheme, one retention.
                docker.ContainerVolumeArgs(host_path=str(settings.backup.dir), container_path=BACKUP_MOUNT),
                # The schedule is in host time, as the runbook's crontab was.
                docker.ContainerVolumeArgs(host_path="/etc/localtime", container_path="/etc/localtime", read_only=True),
                *offsite_volumes(settings),
            ],
            healthcheck=healthcheck(["CMD", "python3", "/app/backup_scheduler.py", "--check"], interval=30, retries=2),
            user=folder_owner(settings.backup.dir),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[NETWORK_ALIAS])],
            **managed_container(settings, "backup-scheduler", memory_mb=MEMORY_MB),
            opts=container_options(self, fixed_name=True, depends_on=args.wait_for),
        )
        self.register_outputs({"container_name": self.container.name})


def scheduler_env(settings: Settings, pg_password: str, repository_password: str | None = None) -> list[str]:
    """The dump's environment, the metrics port and, with an off-host repository, restic's and the drill's."""
    pg = settings.postgres
    env = [
        f"PGHOST={POSTGRES_ALIAS}",
        f"PGUSER={pg.user}",
        f"PGDATABASE={pg.database}",
        f"PGPASSWORD={pg_password}",
        f"BACKUP_DIR={BACKUP_MOUNT}",
        f"BACKUP_KEEP={settings.backup.keep}",
        f"BACKUP_SCHEDULE={settings.backup.schedule}",
        f"BACKUP_GRACE_SECONDS={GRACE_SECONDS}",
        f"STACK_NAME={settings.name_prefix}",
        f"BACKUP_METRICS_PORT={METRICS_PORT}",
    ]
    offsite = settings.backup.offsite
    if offsite is None:
        return env
    assert repository_password is not None
    return [
        *env,
        f"RESTIC_REPOSITORY={offsite.repository}",
        f"RESTIC_PASSWORD={repository_password}",
        f"BACKUP_KEEP_DAILY={offsite.keep_daily}",
        f"BACKUP_KEEP_WEEKLY={offsite.keep_weekly}",
        f"BACKUP_CHECK_READ_DATA={CHECK_READ_DATA}",
        f"DRILL_SCHEDULE={offsite.drill_schedule}",
        f"BACKUP_SECRET_ENV={','.join(offsite.env_names)}",
        *(f"{name}={value}" for name, value in settings.backup_env.items()),
    ]


def offsite_volumes(settings: Settings) -> list[docker.ContainerVolumeArgs]:
    """A local-folder repository is mounted at its own path, so RESTIC_REPOSITORY means the same inside."""
    offsite = settings.backup.offsite
    if offsite is None or offsite.local_folder is None:
        return []
    folder = str(offsite.local_folder)
    return [docker.ContainerVolumeArgs(host_path=folder, container_path=folder)]
