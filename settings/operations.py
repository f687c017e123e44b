"""Operations: monitoring, backups, health verification, preflight, secrets and restore."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import urlsplit

from scripts.cron import CronSchedule
from settings.checks import check_address, check_host_path, check_image
from settings.model import (
    EMAIL_KEYS,
    MIN_JWT_SECRET_CHARS,
    MIN_SECRET_CHARS,
    NAMESPACE,
    REPOSITORY_SCHEMES,
    SECRET_KEYS,
    AlertsSettings,
    BackupSettings,
    EmailSettings,
    HealthSettings,
    MonitoringSettings,
    OffsiteSettings,
    PreflightSettings,
    RestoreSettings,
)
from settings.reader import ConfigError, Loader, Section, port, resolve

# Backend variables restic documents (restic docs, 075_scripting "Environment Variables" and
# 030_preparing_a_new_repo per backend), plus ssh-agent's socket for sftp key auth (ssh(1)).
BACKEND_ENV_PREFIXES = ("AWS_", "RESTIC_", "B2_", "AZURE_", "GOOGLE_", "OS_", "ST_", "RCLONE_")
BACKEND_ENV_EXTRA = ("SSH_AUTH_SOCK",)
# The program sets these itself; taking them from config would bypass the password or the scope.
BACKEND_ENV_RESERVED = (
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_HOST",
    "RESTIC_CACHE_DIR",
)
SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}")

# Defaults: the upstream images, pinned. The redis exporter's "-alpine" variant and the
# busybox-based prom/* and postgres-exporter images carry the wget the health checks use.
DEFAULT_IMAGES = {
    "prometheusImage": "prom/prometheus:v2.53.2",
    "grafanaImage": "grafana/grafana:11.2.0",
    "alertmanagerImage": "prom/alertmanager:v0.27.0",
    "postgresExporterImage": "quay.io/prometheuscommunity/postgres-exporter:v0.15.0",
    "redisExporterImage": "oliver006/redis_exporter:v1.62.0-alpine",
    "nginxExporterImage": "nginx/nginx-prometheus-exporter:1.3.0",
    "blackboxExporterImage": "prom/blackbox-exporter:v0.25.0",
}


def load_monitoring(loader: Loader) -> MonitoringSettings:
    s = loader.section("monitoring")
    images: dict[str, str] = {}
    for key, default in DEFAULT_IMAGES.items():
        value = s.text(key, default)
        assert value is not None
        check_image(f"{s.key}.{key}", value)
        images[key] = value
    prom_port = port(s, "prometheusPort", 9090)
    grafana_port = port(s, "grafanaPort", 3000)
    alertmanager_port = port(s, "alertmanagerPort", 9093)
    interval = s.integer("scrapeIntervalSeconds", 15, 1, 300)
    assert prom_port and grafana_port and alertmanager_port and interval
    return MonitoringSettings(
        enabled=s.boolean("enabled", False),
        prometheus_image=images["prometheusImage"],
        grafana_image=images["grafanaImage"],
        prometheus_port=prom_port,
        grafana_port=grafana_port,
        alertmanager_image=images["alertmanagerImage"],
        postgres_exporter_image=images["postgresExporterImage"],
        redis_exporter_image=images["redisExporterImage"],
        nginx_exporter_image=images["nginxExporterImage"],
        blackbox_exporter_image=images["blackboxExporterImage"],
        alertmanager_port=alertmanager_port,
        scrape_interval_seconds=interval,
    )


# Deliberately plain: what an operator mistypes (a missing "@", a space, a comma-joined list)
# is caught here; full RFC 5322 is the SMTP server's business.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS_RE = re.compile(rf"[^@\s,;<>\"]+@{_LABEL}(?:\.{_LABEL})*")
_SMARTHOST_RE = re.compile(r"[A-Za-z0-9.-]+:(\d{1,5})")


def _webhook_url(key: str, index: int, value: object) -> str:
    where = f"{key}[{index}]"
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a URL string, got {value!r}.")
    url = value.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"{where}: {url!r} is not a URL ({exc}).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ConfigError(
            f"{where}: {url!r} is not an http(s) URL with a host; use e.g. https://hooks.slack.com/services/... "
            "or https://alerts.example.com/hook."
        )
    return url


def _address(full_key: str, value: str) -> str:
    if not _ADDRESS_RE.fullmatch(value):
        raise ConfigError(f"{full_key}: {value!r} is not an e-mail address; use e.g. ops@example.com (one address).")
    return value


def load_alerts(loader: Loader, monitoring: MonitoringSettings) -> AlertsSettings:
    s = loader.section("alerts")
    raw_urls = s.raw.get("webhookUrls", [])
    if isinstance(raw_urls, str):
        raw_urls = [raw_urls]  # a single URL set without --path list syntax
    if not isinstance(raw_urls, list):
        raise ConfigError(f"{s.full_key('webhookUrls')}: expected a list of URLs, got {raw_urls!r}.")
    urls = tuple(_webhook_url(s.full_key("webhookUrls"), i, u) for i, u in enumerate(raw_urls))
    email = _load_email(s.full_key("email"), s.raw.get("email"), loader)
    repeat = s.integer("repeatIntervalHours", 4, 1, 168)
    ratio = s.integer("errorRatioPercent", 5, 1, 100)
    assert repeat is not None and ratio is not None
    alerts = AlertsSettings(webhook_urls=urls, email=email, repeat_interval_hours=repeat, error_ratio_percent=ratio)
    if alerts.has_receivers and not monitoring.enabled:
        raise ConfigError(
            f"{s.key}: receivers are set but catalogizer:monitoring.enabled is false, so nothing would send to them; "
            "enable monitoring with `pulumi config set --path 'catalogizer:monitoring.enabled' true`."
        )
    return alerts


def _load_email(key: str, raw: object, loader: Loader) -> EmailSettings | None:
    password_key = f"{NAMESPACE}:alertsSmtpPassword"
    password_set = loader.config.get("alertsSmtpPassword") is not None
    if raw is None:
        if password_set:
            raise ConfigError(f"{password_key}: is set but {key} is not; set {key}.to/from/smarthost or remove it.")
        return None
    section = Section(key, raw, EMAIL_KEYS)
    values: dict[str, str] = {}
    for name in ("to", "from", "smarthost"):
        value = section.text(name, None)
        if value is None:
            raise ConfigError(
                f"{key}.{name}: is required with {key}; set it with `pulumi config set --path '{key}.{name}' <value>`."
            )
        values[name] = value
    _address(f"{key}.to", values["to"])
    _address(f"{key}.from", values["from"])
    match = _SMARTHOST_RE.fullmatch(values["smarthost"])
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise ConfigError(f"{key}.smarthost: {values['smarthost']!r} is not host:port; use e.g. smtp.example.com:587.")
    username = section.text("username", None)
    if username is not None and not password_set:
        raise ConfigError(
            f"{key}.username: is set but {password_key} is not; "
            f"set it with `pulumi config set --secret {password_key} <password>`."
        )
    if username is None and password_set:
        raise ConfigError(f"{password_key}: is set but {key}.username is not; set the SMTP user name too.")
    return EmailSettings(to=values["to"], sender=values["from"], smarthost=values["smarthost"], username=username)


def load_backup(loader: Loader, app_env: str, env_names: tuple[str, ...] = ()) -> BackupSettings:
    s = loader.section("backup")
    directory = s.text("dir", "backups")
    keep = s.integer("keep", 10, 1, 1000)
    schedule = s.text("schedule", "0 2 * * *")
    assert directory is not None and keep is not None and schedule is not None
    _check_cron(s, "schedule", schedule, "'0 2 * * *' for daily at 02:00 host time")
    # The runbook's nightly dump is a production habit; other stacks opt in.
    scheduler = s.boolean("scheduler", app_env == "production")
    offsite = _load_offsite(s, env_names)
    if offsite is not None and scheduler and offsite.repository.startswith("sftp:"):
        # restic's sftp backend runs ssh(1), which needs a key and known_hosts; the scheduler
        # container has neither, so every scheduled push would fail.
        raise ConfigError(
            f"{s.key}.repository: an sftp: repository is reached with the deploying user's ssh setup, which the "
            f"backup-scheduler container does not have. Use a local folder, rest: or s3: repository, or set "
            f"{s.key}.scheduler to false."
        )
    check_host_path(f"{s.key}.dir", resolve(directory))
    return BackupSettings(dir=resolve(directory), keep=keep, scheduler=scheduler, schedule=schedule, offsite=offsite)


def _check_cron(s: Section, name: str, value: str, example: str) -> None:
    try:
        CronSchedule.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{s.full_key(name)}: {exc}; e.g. {example}.") from None


def _load_offsite(s: Section, env_names: tuple[str, ...]) -> OffsiteSettings | None:
    repository = s.text("repository", None)
    if repository is None:
        for name in ("keepDaily", "keepWeekly", "drillSchedule"):
            if name in s.raw:
                raise ConfigError(
                    f"{s.full_key(name)}: only used with an off-host repository; set {s.key}.repository "
                    f"or remove it with `pulumi config rm --path '{s.full_key(name)}'`."
                )
        if env_names:
            raise ConfigError(
                f"{NAMESPACE}:backupRepositoryEnv: set, but {s.key}.repository is not; "
                "set the repository or remove the variables."
            )
        return None
    keep_daily = s.integer("keepDaily", 0, 0, 1000)
    keep_weekly = s.integer("keepWeekly", 0, 0, 1000)
    # Weekly by default: Sunday 04:00 host time, well after the nightly 02:00 dump.
    drill = s.text("drillSchedule", "0 4 * * 0")
    assert keep_daily is not None and keep_weekly is not None and drill is not None
    _check_cron(s, "drillSchedule", drill, "'0 4 * * 0' for Sundays at 04:00 host time")
    return OffsiteSettings(
        repository=_repository(s, repository),
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        drill_schedule=drill,
        env_names=env_names,
    )


def _repository(s: Section, value: str) -> str:
    key = s.full_key("repository")
    if any(c in value for c in "\n\r\0") or value != value.strip():
        raise ConfigError(f"{key}: must be one line without surrounding spaces.")
    scheme = value.split(":", 1)[0] + ":" if ":" in value.split("/")[0] else None
    if scheme is None or scheme == "local:":
        # restic's local backend: a folder. Relative paths are relative to this project, as backup.dir.
        return str(resolve(value.removeprefix("local:")))
    if scheme not in REPOSITORY_SCHEMES or value == scheme:
        raise ConfigError(
            f"{key}: {value.split(':', 1)[0]!r} is not a repository kind this program runs. Use a local folder, "
            "sftp:user@host:/path, rest:https://host/path or s3:host/bucket (restic's backends); "
            "credentials go into the secret catalogizer:backupRepositoryEnv, not here."
        )
    if scheme == "rest:" and re.match(r"rest:https?://[^/@]*:[^/@]*@", value):
        raise ConfigError(
            f"{key}: holds a password in its URL, which would be stored in plain text; set the URL without "
            "it and put the credentials into the secret catalogizer:backupRepositoryEnv instead."
        )
    return value


def load_backup_env(loader: Loader) -> dict[str, str]:
    """catalogizer:backupRepositoryEnv: a secret object of restic backend variables."""
    key = f"{NAMESPACE}:backupRepositoryEnv"
    raw = loader.secret("backupRepositoryEnv")
    if raw is None:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        # Never echo the value: it is a secret.
        raise ConfigError(
            f"{key}: expected an object of environment variables, e.g. "
            f"`pulumi config set --secret --path '{key}.AWS_ACCESS_KEY_ID' <value>`."
        )
    values: dict[str, str] = {}
    for name, value in parsed.items():
        documented = name.startswith(BACKEND_ENV_PREFIXES) or name in BACKEND_ENV_EXTRA
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name) or not documented or name in BACKEND_ENV_RESERVED:
            raise ConfigError(
                f"{key}: {name!r} is not a backend variable this program passes to restic. Use the variables "
                f"restic documents for the backend ({', '.join(p + '*' for p in BACKEND_ENV_PREFIXES)}, "
                "SSH_AUTH_SOCK); the password is catalogizer:backupRepositoryPassword."
            )
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ConfigError(f"{key}.{name}: expected a string.")
        values[name] = str(value)
    return values


def load_health(loader: Loader) -> HealthSettings:
    s = loader.section("health")
    timeout = s.integer("timeoutSeconds", 120, 5, 3600)
    interval = s.integer("intervalSeconds", 2, 1, 60)
    probe = s.text("probeAddress", "127.0.0.1")
    wait_timeout = s.integer("waitTimeoutSeconds", 180, 10, 3600)
    assert timeout is not None and interval is not None and probe is not None and wait_timeout is not None
    check_address(f"{s.key}.probeAddress", probe)
    if interval >= timeout:
        raise ConfigError(f"{s.key}.intervalSeconds: {interval} must be shorter than timeoutSeconds ({timeout}).")
    return HealthSettings(
        timeout_seconds=timeout, interval_seconds=interval, probe_address=probe, wait_timeout_seconds=wait_timeout
    )


def load_preflight(loader: Loader) -> PreflightSettings:
    s = loader.section("preflight")
    # 0 would switch the disk check off while looking like a setting.
    floor = s.integer("minFreeGb", 10, 1, 100_000)
    assert floor is not None
    return PreflightSettings(min_free_gb=floor)


def load_secrets(loader: Loader) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in SECRET_KEYS:
        value = loader.secret(name)
        if value is None:
            continue
        # The SMTP password is the mail provider's, not ours to make longer.
        floor = {"jwtSecret": MIN_JWT_SECRET_CHARS, "alertsSmtpPassword": 1}.get(name, MIN_SECRET_CHARS)
        if len(value) < floor:
            raise ConfigError(
                f"{NAMESPACE}:{name}: is {len(value)} characters; at least {floor} are required. "
                f"Set a longer one with `pulumi config set --secret {NAMESPACE}:{name} <value>`, "
                "or remove it to have one generated."
            )
        values[name] = value
    return values


def load_restore(loader: Loader, backup: BackupSettings | None = None) -> RestoreSettings | None:
    text = loader.text("restoreFrom", None)
    if text is None:
        return None
    key = f"{NAMESPACE}:restoreFrom"
    if text.startswith("restic:"):
        snapshot = text.removeprefix("restic:")
        if backup is None or backup.offsite is None:
            raise ConfigError(
                f"{key}: {text} names an off-host snapshot, but catalogizer:backup.repository is not set; "
                "set the repository it was pushed to."
            )
        if snapshot != "latest" and not SNAPSHOT_ID.fullmatch(snapshot):
            raise ConfigError(
                f"{key}: {snapshot!r} is not a snapshot; use restic:latest or restic:<id> "
                "(8 to 64 lower-case hex digits, as `restic snapshots` shows)."
            )
        # Its checksum is checked by the restore hook, which can reach the repository.
        return RestoreSettings(file=None, sha256=None, snapshot=snapshot)
    path = resolve(text)
    sidecar = path.with_name(path.name + ".sha256")
    try:
        with path.open("rb") as dump:
            actual = hashlib.file_digest(dump, "sha256").hexdigest()
    except OSError as exc:
        raise ConfigError(
            f"{key}: cannot read {path}: {exc.strerror}. Name a dump written by the backup hook."
        ) from None
    try:
        expected = sidecar.read_text().split()[0].lower()
    except (OSError, IndexError):
        raise ConfigError(
            f"{key}: {sidecar} is missing or empty; the backup hook writes it beside every dump."
        ) from None
    if actual != expected:
        raise ConfigError(
            f"{key}: {path} does not match its sha256 ({actual} != {expected}); the file is corrupt or truncated."
        )
    return RestoreSettings(file=path, sha256=actual)
