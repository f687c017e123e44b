"""Restore for rollback: replays `catalogizer:restoreFrom` before the API comes back."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.backup import database_env
from components.hook_support import exported_summary, hook_command
from settings import RestoreSettings, Settings

SUMMARY_KEYS = ("restored", "sha256", "safetyDump", "seconds", "snapshot")


@dataclass(frozen=True)
class RestoreArgs:
    settings: Settings
    restore: RestoreSettings
    postgres_container_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    # Where nginx's configuration lives: the restore puts up the maintenance page there (one host;
    # None in swarm mode, where nginx's configuration is a Swarm config the hook cannot switch).
    nginx_config_volume: pulumi.Input[str] | None
    # The pre-update backup runs first; the two never dump at the same time.
    after: list[pulumi.Resource]
    repository_password: pulumi.Input[str] | None = None
    # The snapshot this run's pre-update backup pushed: `restic:latest` means the one before it.
    pushed_snapshot: pulumi.Input[str] | None = None
    # Swarm mode: the API service the hook scales to 0 (through the manager) during the replay.
    api_service: str | None = None


class Restore(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: RestoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:Restore", name, None, opts)
        settings = args.settings
        restore = args.restore
        source: dict[str, pulumi.Input[str]] = (
            {"RESTORE_FILE": str(restore.file)}
            if restore.snapshot is None
            else {"RESTORE_SNAPSHOT": restore.snapshot, "RESTORE_EXCLUDE_SNAPSHOT": args.pushed_snapshot or ""}
        )
        api: dict[str, pulumi.Input[str]]
        if args.api_service is not None:
            # DOCKER_HOST is the data node's (database_env); the API service is managed on a manager,
            # the one the provider talks to (docker:host, else the local engine: scripts/swarm_api.py).
            manager = settings.docker_host
            api = {"API_SERVICE": args.api_service, **({"MANAGER_DOCKER_HOST": manager} if manager else {})}
        else:
            api = {"API_STACK_LABEL": settings.name_prefix}
        if args.nginx_config_volume is not None:
            api.update(NGINX_VOLUME=args.nginx_config_volume, NGINX_IMAGE=settings.proxy.image)
        self.command = hook_command(
            f"{name}-pg-restore",
            "restore.py",
            environment={
                **database_env(
                    settings, args.postgres_container_name, args.postgres_password, args.repository_password
                ),
                **source,
                **api,
            },
            # Once per dump: only its content (or the snapshot named) replaces this Command (and,
            # through the same value as a label, the API containers or the API service's tasks). A
            # moved file, a new password or `keep` is an update, which only repeats the record.
            # Removing restoreFrom deletes it and leaves the data alone. `restic:latest` therefore
            # restores once, on the run that sets it.
            triggers=[restore.identity],
            update_args="--keep-record",
            parent=self,
            depends_on=args.after,
        )
        self.summary = exported_summary(self.command.stdout, SUMMARY_KEYS)
        self.register_outputs({"summary": self.summary})
