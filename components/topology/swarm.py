"""Catalogizer on an existing Docker Swarm: the same roles as on one host, as Swarm services.

API replicas spread across nodes with health-gated start-first updates and automatic rollback;
nginx on the edge nodes (host-mode ports); PostgreSQL and Redis pinned to the data node with
their protected volumes; two encrypted overlays; secrets as Swarm secrets. The hooks run
against the data node (backup, restore, the API's role) and the manager (preflight, health; the
restore also scales the API service to 0 there while it replays a dump).
"""

from __future__ import annotations

import pulumi

from components.backup import PreUpdateBackup, PreUpdateBackupArgs
from components.db_roles import DbRoles, DbRolesArgs
from components.restore import Restore, RestoreArgs
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
    preflight = SwarmPreflight("preflight", SwarmPreflightArgs(settings, rollout))
    checked = [preflight.command]
    # Pushed once the preflight has seen the registry answer.
    image = PushedImage("api-registry", PushedImageArgs(settings, built.ref, built.version, checked))

    network = SwarmNetwork("network", SwarmNetworkArgs(settings))
    data = SwarmData("data", SwarmDataArgs(settings, network.back, pg_password, redis_password, checked))
    tls = Tls("tls", TlsArgs(settings))
    backup = PreUpdateBackup(
        "pre-update-backup",
        PreUpdateBackupArgs(settings, data.postgres, data.postgres_service, pg_password, rollout),
    )
    # The dump, then any restore (which keeps the API service at 0 tasks), then the API's role, then the API.
    database_hooks: list[pulumi.Resource] = [backup.command]
    restore = None
    if settings.restore is not None:
        restore = Restore(
            "restore",
            RestoreArgs(
                settings,
                settings.restore,
                data.postgres_service,
                pg_password,
                None,  # no maintenance page: nginx's configuration is a Swarm config here
                [backup.command],
                api_service=api_service_name(settings),
            ),
        )
        database_hooks.append(restore.command)
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
        SwarmHealthArgs(settings, [data.postgres, data.redis, api.service, edge.service], tls.cert_pem, rollout),
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
        "lastBackup": backup.summary,
        "health": health.summary,
    }
    if restore is not None:
        outputs["lastRestore"] = restore.summary
    return outputs
