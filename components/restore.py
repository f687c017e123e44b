"""Restore for rollback: replays `catalogizer:restoreFrom` before the API comes back."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.backup import database_env
from components.hook_support import exported_summary, hook_command
from settings import RestoreSettings, Settings

SUMMARY_KEYS = ("restored", "sha256", "safetyDump", "seconds")


@dataclass(frozen=True)
class RestoreArgs:
    settings: Settings
    restore: RestoreSettings
    postgres_container_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    # The pre-update backup runs first; the two never dump at the same time.
    after: list[pulumi.Resource]


class Restore(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: RestoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:Restore", name, None, opts)
        settings = args.settings
        self.command = hook_command(
            f"{name}-pg-restore",
            "restore.py",
            environment={
                **database_env(settings, args.postgres_container_name, args.postgres_password),
                "RESTORE_FILE": str(args.restore.file),
                "API_STACK_LABEL": settings.name_prefix,
            },
            # Once per dump: only its content replaces this Command (and, through the same sha256 as
            # a label, the API containers). A moved file, a new password or `keep` is an update,
            # which only repeats the record. Removing restoreFrom deletes it and leaves the data alone.
            triggers=[args.restore.sha256],
            update_args="--keep-record",
            parent=self,
            depends_on=args.after,
        )
        self.summary = exported_summary(self.command.stdout, SUMMARY_KEYS)
        self.register_outputs({"summary": self.summary})
