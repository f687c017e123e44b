"""Loads and validates every stack setting before any resource is declared.

Each default lives in this package once (one module per group of sections); README.md's
configuration table mirrors them. A bad value raises ``ConfigError`` naming the key, the
problem and the fix, so `pulumi up` stops before it touches the Docker host.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable

import pulumi

from settings.cluster import check_swarm_scope, load_cluster
from settings.edge import check_acme_domain, load_proxy, load_tls
from settings.model import (
    API_PORT,
    APP_ENVS,
    CLUSTER_MODES,
    LOG_LEVELS,
    LOG_MAX_FILE,
    LOG_MAX_SIZE,
    MIN_JWT_SECRET_CHARS,
    MIN_MEMORY_MB,
    MIN_SECRET_CHARS,
    NAMESPACE,
    NODE_LABEL_DATA,
    NODE_LABEL_EDGE,
    PLAIN_KEYS,
    POSTGRES_PORT,
    REDIS_PORT,
    SECRET_KEYS,
    SECRET_OBJECT_KEYS,
    STRUCTURED_KEYS,
    TLS_MODES,
    AcmeSettings,
    AlertsSettings,
    ApiSettings,
    BackupSettings,
    ClusterSettings,
    EmailSettings,
    HealthSettings,
    MonitoringSettings,
    OffsiteSettings,
    PostgresSettings,
    PreflightSettings,
    ProxySettings,
    RedisSettings,
    RestoreSettings,
    Settings,
    TlsSettings,
    host_port_claims,
)
from settings.operations import (
    load_alerts,
    load_backup,
    load_backup_env,
    load_health,
    load_monitoring,
    load_preflight,
    load_restore,
    load_secrets,
)
from settings.reader import ConfigError, Loader
from settings.services import load_api, load_postgres, load_redis

__all__ = [
    "API_PORT",
    "APP_ENVS",
    "CLUSTER_MODES",
    "LOG_LEVELS",
    "LOG_MAX_FILE",
    "LOG_MAX_SIZE",
    "MIN_JWT_SECRET_CHARS",
    "MIN_MEMORY_MB",
    "MIN_SECRET_CHARS",
    "NAMESPACE",
    "NODE_LABEL_DATA",
    "NODE_LABEL_EDGE",
    "PLAIN_KEYS",
    "POSTGRES_PORT",
    "REDIS_PORT",
    "SECRET_KEYS",
    "SECRET_OBJECT_KEYS",
    "STRUCTURED_KEYS",
    "TLS_MODES",
    "AcmeSettings",
    "AlertsSettings",
    "ApiSettings",
    "BackupSettings",
    "ClusterSettings",
    "ConfigError",
    "EmailSettings",
    "HealthSettings",
    "MonitoringSettings",
    "OffsiteSettings",
    "PostgresSettings",
    "PreflightSettings",
    "ProxySettings",
    "RedisSettings",
    "RestoreSettings",
    "Settings",
    "TlsSettings",
    "load_settings",
]


def _configured_keys() -> set[str]:
    # The engine hands config over either in-process or through PULUMI_CONFIG.
    return set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.config.get_config_env())


def _check_top_level_keys(keys: set[str]) -> None:
    known = (*PLAIN_KEYS, *STRUCTURED_KEYS, *SECRET_KEYS, *SECRET_OBJECT_KEYS)
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{NAMESPACE}:{close[0]}'?" if close else ""
        raise ConfigError(f"{key}: unknown key.{hint} Remove it with `pulumi config rm {key}`.")


def load_settings(
    config: pulumi.Config | None = None,
    stack: str | None = None,
    is_secret: Callable[[str], bool] | None = None,
    docker_config: pulumi.Config | None = None,
    configured_keys: set[str] | None = None,
) -> Settings:
    """Validates the whole stack configuration; raises ConfigError on the first problem."""
    _check_top_level_keys(_configured_keys() if configured_keys is None else configured_keys)
    stack = stack or pulumi.get_stack()
    loader = Loader(
        config or pulumi.Config(NAMESPACE),
        is_secret or pulumi.runtime.is_config_secret,
    )
    docker_host = (docker_config or pulumi.Config("docker")).get("host") or os.environ.get("DOCKER_HOST")

    name_prefix = loader.text("namePrefix", f"catalogizer-{stack}")
    assert name_prefix is not None
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,40}", name_prefix):
        raise ConfigError(
            f"{NAMESPACE}:namePrefix: {name_prefix!r} is not a valid Docker name prefix; "
            "use lower-case letters, digits, '-', '_' or '.' (at most 41 characters)."
        )
    app_env = loader.text("appEnv", "development")
    if app_env not in APP_ENVS:
        raise ConfigError(f"{NAMESPACE}:appEnv: unknown value {app_env!r}. Use one of: {', '.join(APP_ENVS)}.")
    domain = loader.text("domain", "localhost")
    assert domain is not None
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", domain):
        raise ConfigError(f"{NAMESPACE}:domain: {domain!r} is not a DNS name; use e.g. catalog.example.com.")

    api = load_api(loader, production=app_env == "production")
    postgres = load_postgres(loader)
    redis = load_redis(loader)
    proxy = load_proxy(loader)
    tls = load_tls(loader, app_env)
    check_acme_domain(domain, tls)
    monitoring = load_monitoring(loader)
    alerts = load_alerts(loader, monitoring)
    backup_env = load_backup_env(loader)
    backup = load_backup(loader, app_env, tuple(sorted(backup_env)))
    health = load_health(loader)
    preflight = load_preflight(loader)
    _check_port_clashes(host_port_claims(proxy, postgres, redis, monitoring, tls))
    secrets = load_secrets(loader)
    restore = load_restore(loader, backup)
    cluster = load_cluster(loader)
    maintenance = loader.text("maintenance", "false")
    if maintenance not in ("true", "false"):
        raise ConfigError(f"{NAMESPACE}:maintenance: expected true or false, got {maintenance!r}.")
    check_swarm_scope(cluster, postgres, redis, monitoring, backup, tls, maintenance == "true")
    return Settings(
        stack=stack,
        name_prefix=name_prefix,
        app_env=app_env,
        domain=domain,
        api=api,
        postgres=postgres,
        redis=redis,
        proxy=proxy,
        tls=tls,
        monitoring=monitoring,
        alerts=alerts,
        backup=backup,
        health=health,
        preflight=preflight,
        restore=restore,
        maintenance=maintenance == "true",
        docker_host=docker_host,
        secrets=secrets,
        backup_env=backup_env,
        cluster=cluster,
    )


def _check_port_clashes(claims: list[tuple[str, str, int]]) -> None:
    seen: dict[int, str] = {}
    for key, _, port in claims:
        if port in seen:
            raise ConfigError(
                f"{key}: host port {port} is already used by {seen[port]}; give each service its own port."
            )
        seen[port] = key
