"""Operations: monitoring, backups, health verification, preflight, secrets and restore."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from scripts.cron import CronSchedule
from settings.model import (
    EMAIL_KEYS,
    MIN_JWT_SECRET_CHARS,
    MIN_SECRET_CHARS,
    NAMESPACE,
    SECRET_KEYS,
    AlertsSettings,
    BackupSettings,
    EmailSettings,
    HealthSettings,
    MonitoringSettings,
    PreflightSettings,
    RestoreSettings,
)
from settings.reader import ConfigError, Loader, Section, port, resolve

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


def load_backup(loader: Loader, app_env: str) -> BackupSettings:
    s = loader.section("backup")
    directory = s.text("dir", "backups")
    keep = s.integer("keep", 10, 1, 1000)
    schedule = s.text("schedule", "0 2 * * *")
    assert directory is not None and keep is not None and schedule is not None
    try:
        CronSchedule.parse(schedule)
    except ValueError as exc:
        raise ConfigError(f"{s.key}.schedule: {exc}; e.g. '0 2 * * *' for daily at 02:00 host time.") from None
    return BackupSettings(
        dir=resolve(directory),
        keep=keep,
        # The runbook's nightly dump is a production habit; other stacks opt in.
        scheduler=s.boolean("scheduler", app_env == "production"),
        schedule=schedule,
    )


def load_health(loader: Loader) -> HealthSettings:
    s = loader.section("health")
    timeout = s.integer("timeoutSeconds", 120, 5, 3600)
    interval = s.integer("intervalSeconds", 2, 1, 60)
    probe = s.text("probeAddress", "127.0.0.1")
    wait_timeout = s.integer("waitTimeoutSeconds", 180, 10, 3600)
    assert timeout is not None and interval is not None and probe is not None and wait_timeout is not None
    if interval >= timeout:
        raise ConfigError(f"{s.key}.intervalSeconds: {interval} must be shorter than timeoutSeconds ({timeout}).")
    return HealthSettings(
        timeout_seconds=timeout, interval_seconds=interval, probe_address=probe, wait_timeout_seconds=wait_timeout
    )


def load_preflight(loader: Loader) -> PreflightSettings:
    s = loader.section("preflight")
    floor = s.integer("minFreeGb", 10, 0, 100_000)
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


def load_restore(loader: Loader) -> RestoreSettings | None:
    text = loader.text("restoreFrom", None)
    if text is None:
        return None
    key = f"{NAMESPACE}:restoreFrom"
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
