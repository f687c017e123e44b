"""What the validated stack settings are: constants, one frozen dataclass per section."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

NAMESPACE = "catalogizer"

APP_ENVS = ("production", "staging", "development")
TLS_MODES = ("selfSigned", "files", "acme", "off")
CLUSTER_MODES = ("single", "swarm")
# Swarm node labels the operator sets (`docker node update --label-add ...`): nginx runs on the
# edge nodes, PostgreSQL and Redis (and their volumes) on the one data node.
NODE_LABEL_EDGE = "catalogizer.edge"
NODE_LABEL_DATA = "catalogizer.data"
LOG_LEVELS = ("debug", "info", "warn", "error")

# Floors below which the services fail in ways that look like bugs, not limits.
MIN_MEMORY_MB = {"api": 256, "postgres": 256, "redis": 64}
MIN_JWT_SECRET_CHARS = 32
MIN_SECRET_CHARS = 12

API_PORT = 8080
POSTGRES_PORT = 5432
REDIS_PORT = 6379

# Docker log rotation applied to every container.
LOG_MAX_SIZE = "10m"
LOG_MAX_FILE = "5"

STRUCTURED_KEYS: dict[str, tuple[str, ...]] = {
    "api": (
        "source",
        "dockerfile",
        "goVersion",
        "image",
        "replicas",
        "memoryMb",
        "adminUsername",
        "corsOrigins",
        "mediaRoot",
        "logLevel",
        "platform",
        "cpus",
        "keepImages",
    ),
    "postgres": ("image", "user", "database", "memoryMb", "hostPort", "cpus"),
    "redis": ("image", "memoryMb", "hostPort", "cpus"),
    "proxy": ("image", "httpPort", "httpsPort", "cpus"),
    "tls": ("mode", "certFile", "keyFile", "hstsIncludeSubdomains", "acmeEmail", "acmeServer", "acmeCaBundle"),
    "monitoring": (
        "enabled",
        "prometheusImage",
        "grafanaImage",
        "alertmanagerImage",
        "postgresExporterImage",
        "redisExporterImage",
        "nginxExporterImage",
        "blackboxExporterImage",
        "prometheusPort",
        "grafanaPort",
        "alertmanagerPort",
        "scrapeIntervalSeconds",
    ),
    "alerts": ("webhookUrls", "email", "repeatIntervalHours", "errorRatioPercent"),
    "backup": ("dir", "keep", "scheduler", "schedule", "repository", "keepDaily", "keepWeekly", "drillSchedule"),
    "health": ("timeoutSeconds", "intervalSeconds", "probeAddress", "waitTimeoutSeconds"),
    "preflight": ("minFreeGb",),
    "cluster": ("mode", "registry", "dataNodeHost", "encryptedOverlay"),
}
PLAIN_KEYS = ("namePrefix", "appEnv", "domain", "restoreFrom", "maintenance")
SECRET_KEYS = (
    "postgresPassword",
    "postgresApiPassword",
    "postgresMonitorPassword",
    "redisPassword",
    "jwtSecret",
    "adminPassword",
    "grafanaPassword",
    "backupRepositoryPassword",
    "alertsSmtpPassword",
)
# Secret, but an object (environment variables for restic's backend), not a password.
SECRET_OBJECT_KEYS = ("backupRepositoryEnv",)
# restic backends we accept (restic docs, "Preparing a new repository"): a local folder
# (plain path or local:), sftp:, rest: and s3:.
REPOSITORY_SCHEMES = ("local:", "sftp:", "rest:", "s3:")
# The fields of catalogizer:alerts.email.
EMAIL_KEYS = ("to", "from", "smarthost", "username")


@dataclass(frozen=True)
class ApiSettings:
    source: Path | None
    dockerfile: str
    go_version: str
    image: str | None
    replicas: int
    memory_mb: int
    admin_username: str
    cors_origins: tuple[str, ...]
    media_root: Path
    log_level: str
    # os/arch[/variant] of the Docker host the images are built for.
    platform: str
    # Built API versions kept on the Docker host for a rollback without a rebuild.
    keep_images: int
    # CPU limit as Docker's --cpus takes it (a decimal number of CPUs).
    cpus: str = "2"


@dataclass(frozen=True)
class PostgresSettings:
    image: str
    # The superuser: used by the hooks (dumps, restores, the role migration) only.
    user: str
    database: str
    memory_mb: int
    host_port: int | None
    cpus: str = "2"

    @property
    def api_user(self) -> str:
        """The API's own role: no superuser, no CREATEROLE; owns the database and its schema."""
        return f"{self.user[:59]}_api"

    @property
    def monitor_user(self) -> str:
        """The postgres exporter's role: LOGIN in pg_monitor only (statistics, no table data)."""
        return f"{self.user[:55]}_monitor"


@dataclass(frozen=True)
class RedisSettings:
    image: str
    memory_mb: int
    host_port: int | None
    cpus: str = "1"


@dataclass(frozen=True)
class ProxySettings:
    image: str
    http_port: int
    https_port: int
    cpus: str = "0.5"


@dataclass(frozen=True)
class TlsSettings:
    mode: str
    cert_file: Path | None
    key_file: Path | None
    # Read at `pulumi up` for mode=files; the key is handed on only as a secret Output.
    cert_pem: str | None = None
    key_pem: str | None = None
    not_after: datetime.datetime | None = None
    # HSTS (sent whenever TLS is on) also covers every subdomain of the domain.
    hsts_include_subdomains: bool = True
    # The certificate names an OCSP responder (Authority Information Access): nginx staples.
    ocsp_responder: bool = False
    # mode=acme only (settings/edge.py load_acme); None otherwise.
    acme: AcmeSettings | None = None


@dataclass(frozen=True)
class AcmeSettings:
    """Where and as whom the ACME sidecar asks for the certificate (components/acme.py)."""

    email: str
    # The ACME directory URL (RFC 8555 section 7.1.1).
    server: str
    # A private ACME server's CA(s), PEM: trusted for its HTTPS directory and as the root the
    # served chain must verify against; None trusts the system's CAs (Let's Encrypt).
    ca_bundle_file: Path | None = None
    ca_bundle_pem: str | None = None


@dataclass(frozen=True)
class MonitoringSettings:
    enabled: bool
    prometheus_image: str
    grafana_image: str
    prometheus_port: int
    grafana_port: int
    alertmanager_image: str
    postgres_exporter_image: str
    redis_exporter_image: str
    nginx_exporter_image: str
    blackbox_exporter_image: str
    alertmanager_port: int
    # Scrape and rule evaluation interval; Alertmanager's grouping waits follow it.
    scrape_interval_seconds: int


@dataclass(frozen=True)
class EmailSettings:
    to: str
    sender: str
    # host:port of the SMTP server
    smarthost: str
    # None: the server takes mail without authentication.
    username: str | None


@dataclass(frozen=True)
class AlertsSettings:
    webhook_urls: tuple[str, ...]
    email: EmailSettings | None
    repeat_interval_hours: int
    # 5xx share of API responses (percent) that pages after 5 minutes.
    error_ratio_percent: int

    @property
    def has_receivers(self) -> bool:
        return bool(self.webhook_urls) or self.email is not None


@dataclass(frozen=True)
class OffsiteSettings:
    """A restic repository every verified dump is pushed to (issue 11)."""

    # As restic reads it from RESTIC_REPOSITORY; a local folder is an absolute path.
    repository: str
    keep_daily: int
    keep_weekly: int
    drill_schedule: str
    # Names only: the values are secret and live in Settings.backup_env.
    env_names: tuple[str, ...]

    @property
    def local_folder(self) -> Path | None:
        """The folder of a local repository, which the scheduler must mount."""
        if self.repository.startswith("local:"):
            return Path(self.repository.removeprefix("local:"))
        if ":" not in self.repository.split("/")[0]:
            return Path(self.repository)
        return None


@dataclass(frozen=True)
class BackupSettings:
    dir: Path
    keep: int
    scheduler: bool
    schedule: str
    offsite: OffsiteSettings | None = None


@dataclass(frozen=True)
class HealthSettings:
    timeout_seconds: int
    interval_seconds: int
    probe_address: str
    # How long `pulumi up` waits for each container to turn healthy (the provider's wait_timeout).
    wait_timeout_seconds: int


@dataclass(frozen=True)
class PreflightSettings:
    min_free_gb: int


@dataclass(frozen=True)
class RestoreSettings:
    # A local dump (file + sha256) or an off-host snapshot ("latest" or an id).
    file: Path | None
    sha256: str | None
    snapshot: str | None = None

    @property
    def identity(self) -> str:
        """What makes this restore a new one: the dump's content, or the snapshot named."""
        return f"restic:{self.snapshot}" if self.snapshot is not None else str(self.sha256)


@dataclass(frozen=True)
class ClusterSettings:
    """Where the stack runs: one Docker host (`single`) or an existing Docker Swarm (`swarm`)."""

    mode: str
    # host[:port][/path] every node pulls the built API image from (swarm only).
    registry: str | None = None
    # The registry speaks plain HTTP (configured as http://...): a private network only.
    registry_plain_http: bool = False
    # Docker host URL of the node labelled catalogizer.data=true, for the hooks (swarm only).
    data_node_host: str | None = None
    # The overlays carry node-to-node traffic in IPsec; off only where the nodes' kernels lack ESP.
    encrypted_overlay: bool = True

    @property
    def swarm(self) -> bool:
        return self.mode == "swarm"


SINGLE_HOST = ClusterSettings(mode="single")


@dataclass(frozen=True)
class Settings:
    stack: str
    name_prefix: str
    app_env: str
    domain: str
    api: ApiSettings
    postgres: PostgresSettings
    redis: RedisSettings
    proxy: ProxySettings
    tls: TlsSettings
    monitoring: MonitoringSettings
    alerts: AlertsSettings
    backup: BackupSettings
    health: HealthSettings
    preflight: PreflightSettings
    restore: RestoreSettings | None
    # nginx answers every application request with the maintenance page (503).
    maintenance: bool
    docker_host: str | None
    # Operator-supplied secrets by key; keys left unset are generated.
    secrets: Mapping[str, str]
    # catalogizer:backupRepositoryEnv: restic backend variables (secret values).
    backup_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cluster: ClusterSettings = SINGLE_HOST

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def public_url(self) -> str:
        if self.tls.mode == "off":
            return _url("http", self.domain, self.proxy.http_port, 80)
        return _url("https", self.domain, self.proxy.https_port, 443)

    @property
    def health_url(self) -> str:
        return f"{self.public_url}/health"

    @property
    def published_ports(self) -> list[str]:
        """Every host port the stack publishes, as address:port."""
        claims = host_port_claims(self.proxy, self.postgres, self.redis, self.monitoring, self.tls)
        return [f"{address}:{port}" for _, address, port in claims]

    def fingerprint(self) -> str:
        """Changes with any setting; secret values and key material are left out."""
        public = dataclasses.replace(
            self,
            secrets=dict.fromkeys(sorted(self.secrets), "set"),
            backup_env=dict.fromkeys(sorted(self.backup_env), "set"),
            tls=dataclasses.replace(self.tls, key_pem=None),
        )
        return hashlib.sha256(repr(public).encode()).hexdigest()


def _url(scheme: str, host: str, port: int, default_port: int) -> str:
    return f"{scheme}://{host}" if port == default_port else f"{scheme}://{host}:{port}"


def host_port_claims(
    proxy: ProxySettings,
    postgres: PostgresSettings,
    redis: RedisSettings,
    monitoring: MonitoringSettings,
    tls: TlsSettings,
) -> list[tuple[str, str, int]]:
    """(config key, bind address, port) of every host port the stack publishes."""
    # The proxy is public; everything else is for operators on the host only.
    claims: list[tuple[str, str, int | None]] = [
        ("catalogizer:proxy.httpPort", "0.0.0.0", proxy.http_port),
        ("catalogizer:proxy.httpsPort", "0.0.0.0", proxy.https_port if tls.mode != "off" else None),
        ("catalogizer:postgres.hostPort", "127.0.0.1", postgres.host_port),
        ("catalogizer:redis.hostPort", "127.0.0.1", redis.host_port),
    ]
    if monitoring.enabled:
        claims += [
            ("catalogizer:monitoring.prometheusPort", "127.0.0.1", monitoring.prometheus_port),
            ("catalogizer:monitoring.grafanaPort", "127.0.0.1", monitoring.grafana_port),
            ("catalogizer:monitoring.alertmanagerPort", "127.0.0.1", monitoring.alertmanager_port),
        ]
    return [(key, address, port) for key, address, port in claims if port is not None]
