"""Catalogizer on one Docker host: today's stack, one container per role (and per API replica)."""

import pulumi

from components.acme import Acme, AcmeArgs
from components.alertmanager import Alertmanager, AlertmanagerArgs
from components.api import Api, ApiArgs, version_alias
from components.data_safety import DataSafetyArgs, data_safety
from components.db_roles import DbRoles, DbRolesArgs
from components.exporters import Exporters, ExportersArgs
from components.health import HealthCheck, HealthCheckArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.postgres import Postgres, PostgresArgs
from components.preflight import Preflight, PreflightArgs
from components.proxy import Proxy, ProxyArgs
from components.redis import Redis, RedisArgs
from components.tls import Tls, TlsArgs
from components.topology.foundation import declare_foundation
from components.volumes import Volumes, VolumesArgs
from settings import Settings


def deploy(settings: Settings) -> dict[str, object]:
    """Declares the single-host stack; returns the stack outputs."""
    base = declare_foundation(settings)
    secrets, image, api_env, rollout = base.secrets, base.image, base.api_env, base.rollout
    pg_password, redis_password = secrets.postgres_password, secrets.redis_password
    api_alias = version_alias(rollout, settings)
    preflight = Preflight("preflight", PreflightArgs(settings, rollout, secrets.backup_repository_password))
    checked = [preflight.command]

    network = Network("network", NetworkArgs(settings))
    volumes = Volumes("volumes", VolumesArgs(settings))
    postgres = Postgres(
        "postgres",
        PostgresArgs(
            settings,
            network.back,
            volumes.names["postgres-data"],
            volumes.names["postgres-config"],
            pg_password,
            checked,
        ),
    )
    redis = Redis(
        "redis",
        RedisArgs(
            settings, network.back, volumes.names["redis-data"], volumes.names["redis-config"], redis_password, checked
        ),
    )
    tls = Tls("tls", TlsArgs(settings))

    safety = data_safety(
        DataSafetyArgs(
            settings,
            postgres.container,
            postgres.container_name,
            pg_password,
            secrets.backup_repository_password,  # None without catalogizer:backup.repository
            rollout,
            network.back,
            volumes.names["nginx-config"],
            checked,
        )
    )
    gates: list[pulumi.Resource] = [*checked, postgres.container, redis.container, *safety.gates]
    # After the dump and any restore: the API's own role, and no trust lines, before the API starts.
    db_roles = DbRoles(
        "db-roles",
        DbRolesArgs(
            settings,
            postgres.container_name,
            pg_password,
            secrets.postgres_api_password,
            rollout,
            list(gates),
            secrets.postgres_monitor_password if settings.monitoring.enabled else None,
        ),
    )
    gates.append(db_roles.command)
    api = Api(
        "api",
        ApiArgs(settings, image.ref, api_env, api_alias, network.front, network.back, volumes.names["api-logs"], gates),
    )
    # Traffic moves to the new version only after its containers are healthy.
    proxy = Proxy(
        "proxy",
        ProxyArgs(
            settings,
            network.front,
            volumes.names["nginx-logs"],
            volumes.names["nginx-config"],
            tls.cert_pem,
            tls.key_pem,
            api_alias,
            [*checked, *api.containers],
            acme_volumes=volumes.names if settings.tls.mode == "acme" else None,
        ),
    )
    # tls.mode=acme: the real certificate replaces the bootstrap one by reload, before the health check.
    acme = Acme("acme", AcmeArgs(settings, proxy.container, volumes.names)) if settings.tls.mode == "acme" else None
    health = HealthCheck(
        "health",
        HealthCheckArgs(
            settings,
            api.containers,
            proxy.container,
            postgres.container_name,
            redis.container_name,
            redis_password,
            tls.cert_pem,
            rollout,
            acme.issue if acme else None,
        ),
    )
    containers: dict[str, pulumi.Input] = {
        "postgres": postgres.container_name,
        "redis": redis.container_name,
        "api": api.container_names,
        "nginx": proxy.container_name,
    }
    if safety.scheduler is not None:
        containers["backup-scheduler"] = safety.scheduler.container.name
    if acme is not None:
        containers["acme"] = acme.container.name
    if settings.monitoring.enabled:
        scraped = [*checked, postgres.container, redis.container, proxy.container, db_roles.command]
        exporters = Exporters(
            "exporters",
            ExportersArgs(
                settings,
                network.back,
                pg_password,
                redis_password,
                # The probe trusts what the health hook does: an ACME bundle, else the system (None).
                (settings.tls.acme.ca_bundle_pem if settings.tls.acme else tls.cert_pem),
                scraped,
                monitor_password=secrets.postgres_monitor_password,
                front_network=network.front,
            ),
        )
        smtp = settings.secrets.get("alertsSmtpPassword")  # made secret inside the component
        alertmanager = Alertmanager("alertmanager", AlertmanagerArgs(settings, network.back, smtp, checked))
        containers.update(exporters.container_names, alertmanager=alertmanager.container.name)
        monitoring = Monitoring(
            "monitoring",
            MonitoringArgs(
                settings,
                network.back,
                volumes.names["prometheus-data"],
                volumes.names["grafana-data"],
                secrets.grafana_password,
                checked,
            ),
        )
        containers.update(monitoring.container_names)

    outputs: dict[str, object] = {
        "url": settings.public_url,
        "healthUrl": settings.health_url,
        "containers": containers,
        "network": network.back,
        "networks": {"front": network.front, "back": network.back},
        "volumes": volumes.names,
        "adminUsername": settings.api.admin_username,
        "adminPassword": pulumi.Output.secret(secrets.admin_password),
        "postgresPassword": pulumi.Output.secret(pg_password),
        "redisPassword": pulumi.Output.secret(redis_password),
        "grafanaPassword": pulumi.Output.secret(secrets.grafana_password),
        # With ACME, the certificate nginx serves as the sidecar reported it (renewals included).
        "tlsCertificate": acme.cert_pem if acme else tls.cert_pem,
        "tlsExpiry": acme.expires_at if acme else tls.expires_at,
        "preflight": preflight.summary,
        "lastBackup": safety.backup.summary,
        "apiVersions": image.versions,
        "proxy": proxy.summary,
        "health": health.summary,
    }
    if acme is not None:
        outputs["acme"] = acme.summary
    return outputs
