"""The pre-update pg_dump: runs before any API container is replaced, and gates it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.hook_support import docker_env, exported_summary, hook_command
from settings import Settings

SUMMARY_KEYS = ("file", "bytes", "sha256", "seconds")


def database_env(settings: Settings, container_name: pulumi.Input[str], password: pulumi.Input[str]) -> dict:
    return {
        "PG_CONTAINER": container_name,
        "PGUSER": settings.postgres.user,
        "PGDATABASE": settings.postgres.database,
        "PGPASSWORD": pulumi.Output.secret(password),
        "BACKUP_DIR": str(settings.backup.dir),
        "BACKUP_KEEP": str(settings.backup.keep),
        "STACK_NAME": settings.name_prefix,
        **docker_env(settings),
    }


@dataclass(frozen=True)
class PreUpdateBackupArgs:
    settings: Settings
    postgres: pulumi.Resource
    postgres_container_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    # Changes exactly when the API containers will be replaced.
    rollout_fingerprint: pulumi.Input[str]


class PreUpdateBackup(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: PreUpdateBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:PreUpdateBackup", name, None, opts)
        self.command = hook_command(
            f"{name}-pg-dump",
            "backup.py",
            environment=database_env(args.settings, args.postgres_container_name, args.postgres_password),
            triggers=[args.rollout_fingerprint],
            parent=self,
            depends_on=[args.postgres],
        )
        self.summary = exported_summary(self.command.stdout, SUMMARY_KEYS)
        self.register_outputs({"summary": self.summary})
