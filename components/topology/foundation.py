"""What both topologies declare first, the same way: the generated secrets, the API image build,
the API's environment and the rollout fingerprint every hook is triggered by."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.api import ApiSecrets, api_environment, rollout_fingerprint
from components.api_image import ApiImage, ApiImageArgs
from components.secrets import Secrets, SecretsArgs
from settings import Settings


@dataclass(frozen=True)
class Foundation:
    secrets: Secrets
    image: ApiImage
    api_env: pulumi.Output[list[str]]
    # Changes exactly when the API is replaced (single host) or its service updated (swarm: the local
    # image ID decides the pushed digest).
    rollout: pulumi.Output[str]


def declare_foundation(settings: Settings) -> Foundation:
    secrets = Secrets("secrets", SecretsArgs(settings))
    image = ApiImage("api-image", ApiImageArgs(settings))
    # The API gets its own role's password; the superuser's stays with the hooks.
    api_secrets = ApiSecrets(
        secrets.postgres_api_password, secrets.redis_password, secrets.jwt_secret, secrets.admin_password
    )
    api_env = api_environment(settings, api_secrets)
    return Foundation(secrets, image, api_env, rollout_fingerprint(image.ref, api_env))
