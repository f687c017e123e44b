"""The database's safety net, wired in one place: pre-update dump (and off-host push), restore,
restore drill and the backup scheduler.

A plain function, not a component: the resources keep the names and parents they had when
__main__.py created them, so existing stacks see no change of URN (no replacement, no re-run).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.backup import PreUpdateBackup, PreUpdateBackupArgs
from components.backup_scheduler import BackupScheduler, BackupSchedulerArgs
from components.restore import Restore, RestoreArgs
from components.restore_drill import RestoreDrill, RestoreDrillArgs
from settings import Settings


@dataclass(frozen=True)
class DataSafetyArgs:
    settings: Settings
    postgres: pulumi.Resource
    postgres_container_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    # None without catalogizer:backup.repository: local dumps only.
    repository_password: pulumi.Input[str] | None
    rollout_fingerprint: pulumi.Input[str]
    network_name: pulumi.Input[str]
    # The restore puts up nginx's maintenance page there.
    nginx_config_volume: pulumi.Input[str]
    # Preflight: everything waits for it.
    checked: list[pulumi.Resource]


@dataclass(frozen=True)
class DataSafety:
    backup: PreUpdateBackup
    # What the API containers wait for: the pre-update dump and, if any, the restore.
    gates: list[pulumi.Resource]
    scheduler: BackupScheduler | None


def data_safety(args: DataSafetyArgs) -> DataSafety:
    """Creates the hooks and the scheduler; exports lastRestore, lastDrill and backupRepositoryPassword
    when they exist (lastBackup is exported by __main__.py)."""
    settings, pg_password, repo_password = args.settings, args.postgres_password, args.repository_password
    backup = PreUpdateBackup(
        "backup",
        PreUpdateBackupArgs(
            settings, args.postgres, args.postgres_container_name, pg_password, args.rollout_fingerprint, repo_password
        ),
    )
    gates: list[pulumi.Resource] = [backup.command]
    # What writes to or reads the whole database during `pulumi up`; one at a time.
    database_hooks: list[pulumi.Resource] = [backup.command]
    if settings.restore is not None:
        pushed = backup.summary.apply(lambda s: str(s.get("snapshot", "")))
        restore = Restore(
            "restore",
            RestoreArgs(
                settings,
                settings.restore,
                args.postgres_container_name,
                pg_password,
                args.nginx_config_volume,
                [backup.command],
                repo_password,
                pushed,
            ),
        )
        gates.append(restore.command)
        database_hooks.append(restore.command)
        pulumi.export("lastRestore", restore.summary)
    if repo_password is not None:
        drill = RestoreDrill(
            "restore-drill",
            RestoreDrillArgs(
                settings,
                args.postgres_container_name,
                pg_password,
                repo_password,
                database_hooks,
                args.rollout_fingerprint,
            ),
        )
        pulumi.export("lastDrill", drill.summary)
        pulumi.export("backupRepositoryPassword", pulumi.Output.secret(repo_password))
    scheduler = None
    if settings.backup.scheduler:
        scheduler = BackupScheduler(
            "backup-scheduler",
            BackupSchedulerArgs(
                settings, args.network_name, pg_password, [*args.checked, args.postgres], repo_password
            ),
        )
    return DataSafety(backup=backup, gates=gates, scheduler=scheduler)
