"""What the hook components share: where the scripts live and how their JSON is exported."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pulumi
import pulumi_command as command

from settings import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = PROJECT_DIR / "scripts"
# The interpreter the operator's shell finds; the scripts use the standard library only.
PYTHON = "python3"


def script_command(script: str) -> str:
    """Relative to the Command's `dir`, so the state holds no machine-specific path."""
    if not (SCRIPTS_DIR / script).is_file():
        raise FileNotFoundError(SCRIPTS_DIR / script)
    return f"{PYTHON} scripts/{script}"


def hook_command(
    resource_name: str,
    script: str,
    *,
    environment: Mapping[str, pulumi.Input[str]],
    triggers: Sequence[pulumi.Input[str]],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    update_args: str | None = None,
) -> command.local.Command:
    """A hook: the script runs on create, and again whenever a trigger changes.

    Any other input change is an update, which pulumi-command answers by running `create`
    again unless `update` is set (commandController.go); `update_args` runs the same script
    with those arguments instead.
    """
    return command.local.Command(
        resource_name,
        create=script_command(script),
        update=None if update_args is None else f"{script_command(script)} {update_args}",
        dir=str(PROJECT_DIR),
        # pulumi-command logs both streams to the console by default (commandOutputs.go); a
        # failure still shows stderr in its error, which the scripts scrub of secrets first.
        logging=command.local.Logging.NONE,
        # Secrets arrive here and nowhere else: never on the command line.
        environment=dict(environment),
        triggers=list(triggers),
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(depends_on),
            # A script's output could echo what it was given; Pulumi keeps it encrypted.
            additional_secret_outputs=["stdout", "stderr"],
        ),
    )


def docker_env(settings: Settings) -> dict[str, str]:
    """The hooks must talk to the same engine as the Docker provider."""
    return {"DOCKER_HOST": settings.docker_host} if settings.docker_host else {}


def exported_summary(stdout: pulumi.Output[str], keys: tuple[str, ...]) -> pulumi.Output[dict[str, object]]:
    """A hook's JSON line, reduced to known non-secret keys, so it can be a plain stack output."""

    def pick(text: str) -> dict[str, object]:
        if not text.strip():
            return {}
        payload = json.loads(text.strip().splitlines()[-1])
        return {key: payload[key] for key in keys if key in payload}

    return pulumi.Output.unsecret(stdout.apply(pick))
