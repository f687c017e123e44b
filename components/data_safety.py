"""The database's safety net, wired in one place for both topologies: pre-update dump (and
off-host push), restore, restore drill and the backup scheduler.

A plain function, not a component: the resources keep the names and parents they had when
__main__.py created them, so existing stacks see no change of URN (no replacement, no re-run).
In swarm mode the same hooks reach PostgreSQL's task on the data node (components/backup.py
database_env), the restore holds the API service at 0 tasks instead of stopping containers and
puts up no maintenance page, and there is no scheduler (settings/cluster.py refuses it).
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
    # The container's name on one host, the service's name in swarm mode (the hooks find its task).
    postgres_container_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    # None without catalogizer:backup.repository: local dumps only.
    repository_password: pulumi.Input[str] | None
    rollout_fingerprint: pulumi.Input[str]
    # The scheduler's network (one host); None in swarm mode, which has no scheduler.
    network_name: pulumi.Input[str] | None
    # The restore puts up nginx's maintenance page there (one host); None in swarm mode, where
    # nginx's configuration is a Swarm config the hook cannot switch.
    nginx_config_volume: pulumi.Input[str] | None
    # Preflight: everything waits for it.
    checked: list[pulumi.Resource]
    # Swarm mode: the API service the restore scales to 0 through the manager during the replay.
    api_service: str | None = None
    # The backup component's name: `backup` on one host, `pre-update-backup` in swarm mode (each
    # topology keeps the name its stacks were created with, so the URNs do not change).
    backup_name: str = "backup"


@dataclass(frozen=True)
class DataSafety:
    backup: PreUpdateBackup
    # What the API containers (or the API service) wait for: the pre-update dump and, if any, the restore.
    gates: list[pulumi.Resource]
    scheduler: BackupScheduler | None


def data_safety(args: DataSafetyArgs) -> DataSafety:
    """Creates the hooks and the scheduler; exports lastRestore, lastDrill and backupRepositoryPassword
    when they exist (lastBackup is exported by the topology)."""
    settings, pg_password, repo_password = args.settings, args.postgres_password, args.repository_password
    backup = PreUpdateBackup(
        args.backup_name,
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
                api_service=args.api_service,
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
        # settings/cluster.check_swarm_scope refuses the scheduler in swarm mode, the only caller
        # without a network.
        assert args.network_name is not None, "the backup scheduler needs the stack's network"
        scheduler = BackupScheduler(
            "backup-scheduler",
            BackupSchedulerArgs(
                settings, args.network_name, pg_password, [*args.checked, args.postgres], repo_password
            ),
        )
    return DataSafety(backup=backup, gates=gates, scheduler=scheduler)
