"""The stack's credentials: operator-supplied secret config, else stable generated passwords."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from settings import Settings

# Generated lengths; the JWT secret is well above the API's 32-character minimum.
GENERATED_LENGTHS = {
    "postgresPassword": 32,
    # Set on the API's role by the role hook at every rollout, so a new value is harmless.
    "postgresApiPassword": 32,
    "postgresMonitorPassword": 32,
    "redisPassword": 32,
    "jwtSecret": 64,
    "adminPassword": 24,
    "grafanaPassword": 24,
    "backupRepositoryPassword": 32,
}
# Only generated when the stack has an off-host repository.
OPTIONAL = frozenset({"backupRepositoryPassword"})

# Generated secrets that live on inside a protected data volume, so they are protected too.
# The repository password is pinned for the same reason: every snapshot is encrypted with it.
PINNED_TO_DATA = frozenset({"postgresPassword", "backupRepositoryPassword"})


@dataclass(frozen=True)
class SecretsArgs:
    settings: Settings


class Secrets(pulumi.ComponentResource):
    postgres_password: pulumi.Output[str]
    postgres_api_password: pulumi.Output[str]
    postgres_monitor_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]
    jwt_secret: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    grafana_password: pulumi.Output[str]
    # None unless catalogizer:backup.repository is set.
    backup_repository_password: pulumi.Output[str] | None

    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:security:Secrets", name, None, opts)
        values: dict[str, pulumi.Output[str]] = {}
        for key, length in GENERATED_LENGTHS.items():
            if key in OPTIONAL and args.settings.backup.offsite is None:
                continue
            supplied = args.settings.secrets.get(key)
            if supplied is not None:
                values[key] = pulumi.Output.secret(supplied)
                continue
            # Alphanumeric only: these values end up in a redis.conf line and in connection settings.
            generated = random.RandomPassword(
                f"{name}-{key}",
                length=length,
                special=False,
                min_lower=2,
                min_upper=2,
                min_numeric=2,
                # PostgreSQL keeps the password it was initialised with inside the protected data
                # volume; a new one after `destroy` + `up` would lock the API out of its database.
                opts=pulumi.ResourceOptions(parent=self, protect=key in PINNED_TO_DATA),
            )
            # Explicit, so every consumer stays secret whatever the provider marks.
            values[key] = pulumi.Output.secret(generated.result)
        self.postgres_password = values["postgresPassword"]
        self.postgres_api_password = values["postgresApiPassword"]
        self.postgres_monitor_password = values["postgresMonitorPassword"]
        self.redis_password = values["redisPassword"]
        self.jwt_secret = values["jwtSecret"]
        self.admin_password = values["adminPassword"]
        self.grafana_password = values["grafanaPassword"]
        self.backup_repository_password = values.get("backupRepositoryPassword")
        self.register_outputs({})
