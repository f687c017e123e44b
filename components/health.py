"""Post-deploy verification: `pulumi up` fails unless the whole stack answers healthy."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.hook_support import docker_env, exported_summary, hook_command
from settings import Settings

SUMMARY_KEYS = ("status", "seconds", "attempts", "checks")


def public_probe_environment(settings: Settings, cert_pem: pulumi.Input[str] | None) -> dict[str, pulumi.Input[str]]:
    """How both topologies' health hooks poll and reach nginx through the public URL, and what they
    trust there (scripts/health_check.py: nginx_check, verify); the engine they talk to."""
    environment: dict[str, pulumi.Input[str]] = {
        "HEALTH_URL": settings.health_url,
        # In swarm mode an edge node's address: nginx publishes in host mode there only.
        "HEALTH_CONNECT_ADDRESS": settings.health.probe_address,
        "HEALTH_TIMEOUT": str(settings.health.timeout_seconds),
        "HEALTH_INTERVAL": str(settings.health.interval_seconds),
        **docker_env(settings),
    }
    acme = settings.tls.acme
    if acme is not None:
        # The ACME server's CA when one is given (a private server); else the system's CAs,
        # which hold Let's Encrypt's roots: the served chain must verify as a browser's would.
        if acme.ca_bundle_pem is not None:
            environment["HEALTH_CA_PEM"] = acme.ca_bundle_pem
        else:
            environment["HEALTH_SYSTEM_CA"] = "true"
    elif cert_pem is not None:
        environment["HEALTH_CA_PEM"] = cert_pem
    return environment


@dataclass(frozen=True)
class HealthCheckArgs:
    settings: Settings
    api_containers: list[docker.Container]
    proxy_container: docker.Container
    postgres_container_name: pulumi.Input[str]
    redis_container_name: pulumi.Input[str]
    redis_password: pulumi.Input[str]
    cert_pem: pulumi.Input[str] | None
    rollout_fingerprint: pulumi.Input[str]
    # tls.mode=acme: the ACME hook (verified after it) and its certificate (a new one is verified again).
    acme_issue: command.local.Command | None = None


class HealthCheck(pulumi.ComponentResource):
    command: command.local.Command
    summary: pulumi.Output[dict[str, object]]

    def __init__(self, name: str, args: HealthCheckArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:ops:HealthCheck", name, None, opts)
        settings = args.settings
        watched = [*args.api_containers, args.proxy_container]
        environment: dict[str, pulumi.Input[str]] = {
            **public_probe_environment(settings, args.cert_pem),
            "NGINX_CONTAINER": args.proxy_container.name,
            "API_CONTAINERS": pulumi.Output.all(*[c.name for c in args.api_containers]).apply(",".join),
            "PG_CONTAINER": args.postgres_container_name,
            "PGUSER": settings.postgres.user,
            "PGDATABASE": settings.postgres.database,
            "REDIS_CONTAINER": args.redis_container_name,
            "REDIS_PASSWORD": pulumi.Output.secret(args.redis_password),
        }
        after: list[pulumi.Resource] = [] if args.acme_issue is None else [args.acme_issue]
        acme_trigger = [] if args.acme_issue is None else [args.acme_issue.stdout]
        self.command = hook_command(
            f"{name}-verify",
            "health_check.py",
            environment=environment,
            # Every rollout, and any replaced container (new ID), is verified again.
            triggers=[args.rollout_fingerprint, *[c.id for c in watched], *acme_trigger],
            parent=self,
            depends_on=[*watched, *after],
        )
        self.summary = exported_summary(self.command.stdout, SUMMARY_KEYS)
        self.register_outputs({"summary": self.summary})
