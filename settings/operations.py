"""Operations: monitoring, backups, health verification, preflight, secrets and restore."""

from __future__ import annotations

import hashlib

from scripts.cron import CronSchedule
from settings.model import (
    MIN_JWT_SECRET_CHARS,
    MIN_SECRET_CHARS,
    NAMESPACE,
    SECRET_KEYS,
    BackupSettings,
    HealthSettings,
    MonitoringSettings,
    PreflightSettings,
    RestoreSettings,
)
from settings.reader import ConfigError, Loader, port, resolve


def load_monitoring(loader: Loader) -> MonitoringSettings:
    s = loader.section("monitoring")
    prom_image = s.text("prometheusImage", "prom/prometheus:v2.53.2")
    grafana_image = s.text("grafanaImage", "grafana/grafana:11.2.0")
    prom_port = port(s, "prometheusPort", 9090)
    grafana_port = port(s, "grafanaPort", 3000)
    assert prom_image and grafana_image and prom_port and grafana_port
    return MonitoringSettings(
        enabled=s.boolean("enabled", False),
        prometheus_image=prom_image,
        grafana_image=grafana_image,
        prometheus_port=prom_port,
        grafana_port=grafana_port,
    )


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
        floor = MIN_JWT_SECRET_CHARS if name == "jwtSecret" else MIN_SECRET_CHARS
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
