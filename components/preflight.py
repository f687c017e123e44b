"""The runbook's pre-deployment checklist, for what only the Docker host can tell."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.backup import offsite_env
from components.hook_support import docker_env, exported_summary, hook_command
from settings import Settings

SUMMARY_KEYS = ("docker", "platform", "freeGb", "ports", "certificateNotAfter", "certificateExpired", "repository")


def disk_environment(settings: Settings) -> dict[str, str]:
    """What scripts/preflight.check_disk needs, in both topologies: the floor, the backup folder (where
    the dumps are written, on the machine running `pulumi up`) and the image a throwaway container
    measures a remote engine's data root with."""
    return {
        "PREFLIGHT_MIN_FREE_GB": str(settings.preflight.min_free_gb),
        "BACKUP_DIR": str(settings.backup.dir),
        # Already present when it matters: the engine that runs PostgreSQL pulls it anyway.
        "PREFLIGHT_PROBE_IMAGE": settings.postgres.image,
    }


@dataclass(frozen=True)
class PreflightArgs:
    settings: Settings
    rollout_fingerprint: pulumi.Input[str]
    # With an off-host repository: restic present here, repository reachable (initialised on first use).
    repository_password: pulumi.Input[str] | None = None


class Preflight(pulumi.ComponentResource):
    """Every container depends on ``command``, so a failed check stops the update first."""

    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: PreflightArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:Preflight", name, None, opts)
        settings = args.settings
        environment = {
            **disk_environment(settings),
            "MEDIA_ROOT": str(settings.api.media_root),
            "STACK_LABEL": settings.name_prefix,
            "PREFLIGHT_PORTS": ",".join(settings.published_ports),
            "PREFLIGHT_PLATFORM": settings.api.platform,
            **docker_env(settings),
            **offsite_env(settings, args.repository_password),
        }
        if settings.tls.cert_file is not None:
            environment["TLS_CERT_FILE"] = str(settings.tls.cert_file)
        if settings.tls.mode == "acme":
            # The served certificate, in the volume components/volumes.py names this way.
            environment["TLS_CERT_VOLUME"] = f"{settings.name_prefix}-acme-certs"
        self.command = hook_command(
            f"{name}-checks",
            "preflight.py",
            environment=environment,
            # Any change to the stack runs the checks again before anything is replaced.
            triggers=[settings.fingerprint(), args.rollout_fingerprint],
            parent=self,
        )
        self.summary = exported_summary(self.command.stdout, SUMMARY_KEYS)
        self.register_outputs({"summary": self.summary})
