"""The pre-update pg_dump: runs before any API container is replaced, and gates it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.hook_support import docker_env, exported_summary, hook_command
from settings import Settings

# snapshot/repository/kind/remoteSnapshots/checked only with an off-host repository (issue 11);
# the repository is shown without credentials (scripts/offsite.py redacted()).
SUMMARY_KEYS = ("file", "bytes", "sha256", "seconds", "snapshot", "repository", "kind", "remoteSnapshots", "checked")


def offsite_env(settings: Settings, repository_password: pulumi.Input[str] | None) -> dict:
    """restic's environment (restic docs, 075_scripting): secrets as secret Outputs, never argv."""
    offsite = settings.backup.offsite
    if offsite is None or repository_password is None:
        return {}
    return {
        "RESTIC_REPOSITORY": offsite.repository,
        "RESTIC_PASSWORD": pulumi.Output.secret(repository_password),
        "BACKUP_KEEP_DAILY": str(offsite.keep_daily),
        "BACKUP_KEEP_WEEKLY": str(offsite.keep_weekly),
        # Names only, so the scripts can scrub these values from anything they print.
        "BACKUP_SECRET_ENV": ",".join(offsite.env_names),
        **{name: pulumi.Output.secret(value) for name, value in settings.backup_env.items()},
    }


def database_env(
    settings: Settings,
    container_name: pulumi.Input[str],
    password: pulumi.Input[str],
    repository_password: pulumi.Input[str] | None = None,
) -> dict:
    return {
        # In swarm mode PostgreSQL is a service on the data node: the hooks get its name and that
        # node's Docker host, and find its running task there (scripts/hooklib.use_service_container).
        **(
            {"PG_SERVICE": container_name, "DOCKER_HOST": settings.cluster.data_node_host}
            if settings.cluster.swarm
            else {"PG_CONTAINER": container_name, **docker_env(settings)}
        ),
        "PGUSER": settings.postgres.user,
        "PGDATABASE": settings.postgres.database,
        "PGPASSWORD": pulumi.Output.secret(password),
        "BACKUP_DIR": str(settings.backup.dir),
        "BACKUP_KEEP": str(settings.backup.keep),
        "STACK_NAME": settings.name_prefix,
        **offsite_env(settings, repository_password),
    }


@dataclass(frozen=True)
class PreUpdateBackupArgs:
    settings: Settings
    postgres: pulumi.Resource
    postgres_container_name: pulumi.Input[str]
    postgres_password: pulumi.Input[str]
    # Changes exactly when the API containers will be replaced.
    rollout_fingerprint: pulumi.Input[str]
    # Set when catalogizer:backup.repository is: every dump is then pushed off-host.
    repository_password: pulumi.Input[str] | None = None


class PreUpdateBackup(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: PreUpdateBackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:PreUpdateBackup", name, None, opts)
        self.command = hook_command(
            f"{name}-pg-dump",
            "backup.py",
            environment=database_env(
                args.settings, args.postgres_container_name, args.postgres_password, args.repository_password
            ),
            triggers=[args.rollout_fingerprint],
            parent=self,
            depends_on=[args.postgres],
        )
        self.summary = exported_summary(self.command.stdout, SUMMARY_KEYS)
        self.register_outputs({"summary": self.summary})
