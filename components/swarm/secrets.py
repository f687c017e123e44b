"""Swarm secrets and configs: files the engine mounts into a service's tasks.

A secret's `data` is base64 (TF resource_docker_secret.go decodes it with base64.StdEncoding) and
every input is ForceNew, as for a config (resource_docker_config.go). They are auto-named (no
`name`), so a changed content is a new secret created before the old one is deleted: the service
update that switches to it finds it, and the old one goes after the update.
"""

from __future__ import annotations

import base64

import pulumi
import pulumi_docker as docker

from components.container_defaults import labels
from settings import Settings


def _secret_labels(settings: Settings, role: str) -> list[docker.SecretLabelArgs]:
    return [docker.SecretLabelArgs(label=item["label"], value=item["value"]) for item in labels(settings, role)]


def swarm_secret(
    settings: Settings, resource_name: str, role: str, value: pulumi.Input[str], parent: pulumi.Resource
) -> docker.Secret:
    """A Swarm secret holding `value`; the input stays a secret Output all the way."""
    data = pulumi.Output.secret(value).apply(lambda text: base64.b64encode(text.encode()).decode())
    return docker.Secret(
        resource_name,
        data=data,
        labels=_secret_labels(settings, role),
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=False),
    )


def swarm_config(
    settings: Settings, resource_name: str, role: str, content: pulumi.Input[str], parent: pulumi.Resource
) -> docker.ServiceConfig:
    """A Swarm config holding `content` (plain text: nginx.conf, the certificate)."""
    return docker.ServiceConfig(
        resource_name,
        data_raw=content,
        labels=[
            docker.ServiceConfigLabelArgs(label=item["label"], value=item["value"]) for item in labels(settings, role)
        ],
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=False),
    )


def secret_file(
    secret: docker.Secret, path: str, *, uid: str = "0", gid: str = "0", mode: int = 0o440
) -> docker.ServiceTaskSpecContainerSpecSecretArgs:
    # Root's and readable by group 0: the non-root services run with group 0 (as on one host, where
    # the uploaded files are root:root 0640).
    return docker.ServiceTaskSpecContainerSpecSecretArgs(
        secret_id=secret.id, secret_name=secret.name, file_name=path, file_uid=uid, file_gid=gid, file_mode=mode
    )


def config_file(
    config: docker.ServiceConfig, path: str, *, mode: int = 0o444
) -> docker.ServiceTaskSpecContainerSpecConfigArgs:
    return docker.ServiceTaskSpecContainerSpecConfigArgs(
        config_id=config.id, config_name=config.name, file_name=path, file_uid="0", file_gid="0", file_mode=mode
    )
