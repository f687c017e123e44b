"""The swarm preflight and post-deploy verification hooks (scripts/swarm_preflight.py,
scripts/swarm_health.py); like every hook they are Commands that only call the script."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.backup import offsite_env
from components.health import public_probe_environment
from components.hook_support import docker_env, exported_summary, hook_command
from components.preflight import disk_environment
from settings import NODE_LABEL_DATA, NODE_LABEL_EDGE, Settings

PREFLIGHT_KEYS = ("manager", "edgeNodes", "dataNode", "freeGb", "registry", "repository", "seconds")
HEALTH_KEYS = ("status", "seconds", "attempts", "checks")


@dataclass(frozen=True)
class SwarmPreflightArgs:
    settings: Settings
    # Changes with every rollout, so the cluster is checked again before each.
    rollout_fingerprint: pulumi.Input[str]
    # With an off-host repository: restic present here, repository reachable (initialised on first use).
    repository_password: pulumi.Input[str] | None = None


class SwarmPreflight(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: SwarmPreflightArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:SwarmPreflight", name, None, opts)
        cluster = args.settings.cluster
        assert cluster.registry is not None and cluster.data_node_host is not None
        self.command = hook_command(
            f"{name}-check",
            "swarm_preflight.py",
            environment={
                "EDGE_LABEL": NODE_LABEL_EDGE,
                "DATA_LABEL": NODE_LABEL_DATA,
                "DATA_NODE_HOST": cluster.data_node_host,
                "REGISTRY": cluster.registry,
                # Probed over exactly the scheme the engines pull over (settings: http:// said on purpose).
                "REGISTRY_SCHEME": "http" if cluster.registry_plain_http else "https",
                # Free space on the data node's data root and on BACKUP_DIR, as on one host; the
                # repository check (scripts/preflight.check_repository) keeps restic's cache there too.
                **disk_environment(args.settings),
                "STACK_LABEL": args.settings.name_prefix,
                **docker_env(args.settings),
                **offsite_env(args.settings, args.repository_password),
            },
            triggers=[args.rollout_fingerprint],
            parent=self,
        )
        self.summary = exported_summary(self.command.stdout, PREFLIGHT_KEYS)
        self.register_outputs({"summary": self.summary})


@dataclass(frozen=True)
class SwarmHealthArgs:
    settings: Settings
    services: list[pulumi.CustomResource]
    # One per service (task_defaults.declare_service): the check runs again whenever any spec changes.
    revisions: list[pulumi.Input[str]]
    cert_pem: pulumi.Input[str] | None
    rollout_fingerprint: pulumi.Input[str]


class SwarmHealth(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: SwarmHealthArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:SwarmHealth", name, None, opts)
        settings = args.settings
        names = [service.name for service in args.services]  # type: ignore[attr-defined]
        # No ACME in swarm mode (settings/cluster.py refuses it): the stack's own certificate is trusted.
        environment: dict[str, pulumi.Input[str]] = {
            "SWARM_SERVICES": pulumi.Output.all(*names).apply(",".join),
            **public_probe_environment(settings, args.cert_pem),
        }
        self.command = hook_command(
            f"{name}-verify",
            "swarm_health.py",
            environment=environment,
            # Every rollout, and every service update, is verified again: a service's spec can change
            # without a rollout (nginx.conf, the certificate or key; redis.conf; an image or limit), and
            # Swarm applies it in the background after the provider returns (nginx, a global service, is
            # not even waited for), so only this hook makes a bad update fail `pulumi up`. Any other
            # input change (HEALTH_CA_PEM: a new certificate) re-runs it too, as an update.
            triggers=[args.rollout_fingerprint, *args.revisions],
            parent=self,
            depends_on=list(args.services),
        )
        self.summary = exported_summary(self.command.stdout, HEALTH_KEYS)
        self.register_outputs({"summary": self.summary})
