"""The API's own PostgreSQL role and a pg_hba.conf without `trust`: scripts/db_roles.py as a hook."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.backup import database_env
from components.hook_support import exported_summary, hook_command
from settings import Settings

SUMMARY_KEYS = ("apiRole", "trustLinesReplaced")


@dataclass(frozen=True)
class DbRolesArgs:
    settings: Settings
    postgres_container_name: pulumi.Input[str]
    superuser_password: pulumi.Input[str]
    api_password: pulumi.Input[str]
    # Changes exactly when the API containers will be replaced.
    rollout_fingerprint: pulumi.Input[str]
    # Runs after the dump and any restore: a restore recreates objects owned by the superuser.
    wait_for: Sequence[pulumi.Resource]
    # With monitoring: the postgres exporter's role (pg_monitor only) and its password.
    monitor_password: pulumi.Input[str] | None = None


class DbRoles(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: DbRolesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:data:DbRoles", name, None, opts)
        settings = args.settings
        environment = {
            **database_env(settings, args.postgres_container_name, args.superuser_password),
            "API_DB_USER": settings.postgres.api_user,
            "API_DB_PASSWORD": pulumi.Output.secret(args.api_password),
        }
        if args.monitor_password is not None:
            environment["MONITOR_DB_USER"] = settings.postgres.monitor_user
            environment["MONITOR_DB_PASSWORD"] = pulumi.Output.secret(args.monitor_password)
        triggers: list[pulumi.Input[str]] = [args.rollout_fingerprint]
        if settings.restore is not None:
            triggers.append(settings.restore.sha256)
        self.command = hook_command(
            f"{name}-api-role",
            "db_roles.py",
            environment=environment,
            triggers=triggers,
            parent=self,
            depends_on=list(args.wait_for),
        )
        self.summary = exported_summary(self.command.stdout, SUMMARY_KEYS)
        self.register_outputs({"summary": self.summary})
