"""Catalogizer on one Docker host: load config, wire the components, export."""

import pulumi

from components.alertmanager import Alertmanager, AlertmanagerArgs
from components.api import Api, ApiArgs, ApiSecrets, api_environment, rollout_fingerprint
from components.api_image import ApiImage, ApiImageArgs
from components.backup import PreUpdateBackup, PreUpdateBackupArgs
from components.backup_scheduler import BackupScheduler, BackupSchedulerArgs
from components.exporters import Exporters, ExportersArgs
from components.health import HealthCheck, HealthCheckArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.postgres import Postgres, PostgresArgs
from components.preflight import Preflight, PreflightArgs
from components.proxy import Proxy, ProxyArgs
from components.redis import Redis, RedisArgs
from components.restore import Restore, RestoreArgs
from components.secrets import Secrets, SecretsArgs
from components.tls import Tls, TlsArgs
from components.volumes import Volumes, VolumesArgs
from settings import load_settings

settings = load_settings()
secrets = Secrets("secrets", SecretsArgs(settings))
pg_password, redis_password = secrets.postgres_password, secrets.redis_password
image = ApiImage("api-image", ApiImageArgs(settings))
api_secrets = ApiSecrets(pg_password, redis_password, secrets.jwt_secret, secrets.admin_password)
api_env = api_environment(settings, api_secrets)
rollout = rollout_fingerprint(image.ref, api_env)
preflight = Preflight("preflight", PreflightArgs(settings, rollout))
checked = [preflight.command]

network = Network("network", NetworkArgs(settings))
volumes = Volumes("volumes", VolumesArgs(settings))
postgres = Postgres(
    "postgres", PostgresArgs(settings, network.name, volumes.names["postgres-data"], pg_password, checked)
)
redis = Redis("redis", RedisArgs(settings, network.name, volumes.names["redis-data"], redis_password, checked))
tls = Tls("tls", TlsArgs(settings))

backup = PreUpdateBackup(
    "backup", PreUpdateBackupArgs(settings, postgres.container, postgres.container_name, pg_password, rollout)
)
gates: list[pulumi.Resource] = [*checked, postgres.container, redis.container, backup.command]
if settings.restore is not None:
    restore = Restore(
        "restore", RestoreArgs(settings, settings.restore, postgres.container_name, pg_password, [backup.command])
    )
    gates.append(restore.command)
    pulumi.export("lastRestore", restore.summary)
api = Api("api", ApiArgs(settings, image.ref, api_env, network.name, volumes.names["api-logs"], gates))
proxy = Proxy(
    "proxy", ProxyArgs(settings, network.name, volumes.names["nginx-logs"], tls.cert_pem, tls.key_pem, checked)
)
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
    ),
)
containers: dict[str, pulumi.Input] = {
    "postgres": postgres.container_name,
    "redis": redis.container_name,
    "api": api.container_names,
    "nginx": proxy.container_name,
}
if settings.backup.scheduler:
    scheduler = BackupScheduler(
        "backup-scheduler", BackupSchedulerArgs(settings, network.name, pg_password, [*checked, postgres.container])
    )
    containers["backup-scheduler"] = scheduler.container.name
if settings.monitoring.enabled:
    scraped = [*checked, postgres.container, redis.container, proxy.container]
    exporters = Exporters(
        "exporters", ExportersArgs(settings, network.name, pg_password, redis_password, tls.cert_pem, scraped)
    )
    smtp = settings.secrets.get("alertsSmtpPassword")  # made secret inside the component
    alertmanager = Alertmanager("alertmanager", AlertmanagerArgs(settings, network.name, smtp, checked))
    containers.update(exporters.container_names, alertmanager=alertmanager.container.name)
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            settings,
            network.name,
            volumes.names["prometheus-data"],
            volumes.names["grafana-data"],
            secrets.grafana_password,
            checked,
        ),
    )
    containers.update(monitoring.container_names)

pulumi.export("url", settings.public_url)
pulumi.export("healthUrl", settings.health_url)
pulumi.export("containers", containers)
pulumi.export("network", network.name)
pulumi.export("volumes", volumes.names)
pulumi.export("adminUsername", settings.api.admin_username)
pulumi.export("adminPassword", pulumi.Output.secret(secrets.admin_password))
pulumi.export("postgresPassword", pulumi.Output.secret(pg_password))
pulumi.export("redisPassword", pulumi.Output.secret(redis_password))
pulumi.export("grafanaPassword", pulumi.Output.secret(secrets.grafana_password))
pulumi.export("tlsCertificate", tls.cert_pem)
pulumi.export("tlsExpiry", tls.expires_at)
pulumi.export("preflight", preflight.summary)
pulumi.export("lastBackup", backup.summary)
pulumi.export("health", health.summary)
