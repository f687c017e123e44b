"""The restore drill after each pre-update push: the copy that just left the host restores.

Runs scripts/restore_drill.py (newest off-host snapshot into a scratch database, compared with
the manifest taken with the dump) once the pre-update backup pushed it. Nothing waits for it:
the update goes on meanwhile, and a failed drill fails `pulumi up` with what differed. The
scheduler repeats the drill on catalogizer:backup.drillSchedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.backup import database_env
from components.hook_support import exported_summary, hook_command
from settings import Settings

SUMMARY_KEYS = ("ok", "at", "snapshot", "snapshotTime", "kind", "tables", "rows", "differences", "error", "seconds")


@dataclass(frozen=True)
class RestoreDrillArgs:
    settings: Settings
    postgres_container_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    repository_password: pulumi.Input[str]
    # The pre-update backup (and a restore, if any): the drill never competes with them.
    after: list[pulumi.Resource]
    rollout_fingerprint: pulumi.Input[str]


class RestoreDrill(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: RestoreDrillArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:RestoreDrill", name, None, opts)
        self.command = hook_command(
            f"{name}-drill",
            "restore_drill.py",
            environment=database_env(
                args.settings, args.postgres_container_name, args.postgres_password, args.repository_password
            ),
            # With every pre-update backup, i.e. exactly when a new copy was pushed.
            triggers=[args.rollout_fingerprint],
            parent=self,
            depends_on=args.after,
        )
        self.summary = exported_summary(self.command.stdout, SUMMARY_KEYS)
        self.register_outputs({"summary": self.summary})
