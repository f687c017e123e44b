"""Catalogizer on an existing Docker Swarm: the same roles as on one host, as Swarm services.

API replicas spread across nodes with health-gated start-first updates and automatic rollback;
nginx on the edge nodes (host-mode ports); PostgreSQL and Redis pinned to the data node with
their protected volumes; two encrypted overlays; secrets as Swarm secrets. The hooks run
against the data node (backup with its off-host push, restore, restore drill, the API's role) and
the manager (preflight, health; the restore also scales the API service to 0 there while it
replays a dump). The database hooks are wired by components/data_safety.py, as on one host.
"""

from __future__ import annotations

import pulumi

from components.data_safety import DataSafetyArgs, data_safety
from components.db_roles import DbRoles, DbRolesArgs
from components.swarm.app import PushedImage, PushedImageArgs, SwarmApi, SwarmApiArgs, api_service_name
from components.swarm.checks import SwarmHealth, SwarmHealthArgs, SwarmPreflight, SwarmPreflightArgs
from components.swarm.data import SwarmData, SwarmDataArgs
from components.swarm.edge import SwarmEdge, SwarmEdgeArgs
from components.swarm.network import SwarmNetwork, SwarmNetworkArgs
from components.tls import Tls, TlsArgs
from components.topology.foundation import declare_foundation
from settings import Settings


def deploy(settings: Settings) -> dict[str, object]:
    """Declares the swarm stack; returns the stack outputs."""
    base = declare_foundation(settings)
    secrets, built, api_env, rollout = base.secrets, base.image, base.api_env, base.rollout
    pg_password, redis_password = secrets.postgres_password, secrets.redis_password
    # With backup.repository: restic present here and the repository answering (initialised on first
    # use) before anything changes, as the single-host preflight does.
    repo_password = secrets.backup_repository_password  # None without catalogizer:backup.repository
    preflight = SwarmPreflight("preflight", SwarmPreflightArgs(settings, rollout, repo_password))
    checked = [preflight.command]
    # Pushed once the preflight has seen the registry answer.
    image = PushedImage("api-registry", PushedImageArgs(settings, built.ref, built.version, checked))

    network = SwarmNetwork("network", SwarmNetworkArgs(settings))
    data = SwarmData("data", SwarmDataArgs(settings, network.back, pg_password, redis_password, checked))
    tls = Tls("tls", TlsArgs(settings))
    # The dump (pushed off-host with a repository), then any restore (which keeps the API service at 0
    # tasks), then the API's role, then the API; the drill after the dump and the restore, gating nothing.
    safety = data_safety(
        DataSafetyArgs(
            settings,
            data.postgres,
            data.postgres_service,
            pg_password,
            repo_password,
            rollout,
            None,  # no scheduler in swarm mode (settings/cluster.py refuses it)
            None,  # no maintenance page: nginx's configuration is a Swarm config here
            checked,
            api_service=api_service_name(settings),
            backup_name="pre-update-backup",
        )
    )
    database_hooks = safety.gates
    db_roles = DbRoles(
        "db-roles",
        DbRolesArgs(
            settings,
            data.postgres_service,
            pg_password,
            secrets.postgres_api_password,
            rollout,
            [data.postgres, *database_hooks],
        ),
    )
    api = SwarmApi(
        "api",
        SwarmApiArgs(
            settings,
            image.ref,
            api_env,
            network.front,
            network.back,
            [*checked, data.postgres, data.redis, *database_hooks, db_roles.command],
        ),
    )
    edge = SwarmEdge("proxy", SwarmEdgeArgs(settings, network.front, tls.cert_pem, tls.key_pem, [api.service]))
    health = SwarmHealth(
        "health",
        SwarmHealthArgs(
            settings,
            [data.postgres, data.redis, api.service, edge.service],
            [data.revisions["postgres"], data.revisions["redis"], api.revision, edge.revision],
            tls.cert_pem,
            rollout,
        ),
    )
    outputs: dict[str, object] = {
        "url": settings.public_url,
        "healthUrl": settings.health_url,
        "services": {
            "postgres": data.postgres_service,
            "redis": data.redis_service,
            "api": api.service_name,
            "nginx": edge.service_name,
        },
        "networks": {"front": network.front_name, "back": network.back_name},
        "volumes": data.volumes,
        "apiImage": image.ref,
        "adminUsername": settings.api.admin_username,
        "adminPassword": pulumi.Output.secret(secrets.admin_password),
        "postgresPassword": pulumi.Output.secret(pg_password),
        "redisPassword": pulumi.Output.secret(redis_password),
        "tlsCertificate": tls.cert_pem,
        "tlsExpiry": tls.expires_at,
        "preflight": preflight.summary,
        "lastBackup": safety.backup.summary,
        "health": health.summary,
    }
    return outputs
