"""Loads and validates every stack setting before any resource is declared.

Each default lives here once; README.md's configuration table mirrors it.
A bad value raises ``ConfigError`` naming the key, the problem and the fix,
so `pulumi up` stops before it touches the Docker host.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from scripts.cron import CronSchedule

NAMESPACE = "catalogizer"

APP_ENVS = ("production", "staging", "development")
TLS_MODES = ("selfSigned", "files", "off")
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
    ),
    "postgres": ("image", "user", "database", "memoryMb", "hostPort"),
    "redis": ("image", "memoryMb", "hostPort"),
    "proxy": ("image", "httpPort", "httpsPort"),
    "tls": ("mode", "certFile", "keyFile"),
    "monitoring": ("enabled", "prometheusImage", "grafanaImage", "prometheusPort", "grafanaPort"),
    "backup": ("dir", "keep", "scheduler", "schedule"),
    "health": ("timeoutSeconds", "intervalSeconds", "probeAddress"),
    "preflight": ("minFreeGb",),
}
PLAIN_KEYS = ("namePrefix", "appEnv", "domain", "restoreFrom")
SECRET_KEYS = ("postgresPassword", "redisPassword", "jwtSecret", "adminPassword", "grafanaPassword")


class ConfigError(ValueError):
    """A stack setting is invalid; the message says which key and how to fix it."""


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


@dataclass(frozen=True)
class PostgresSettings:
    image: str
    user: str
    database: str
    memory_mb: int
    host_port: int | None


@dataclass(frozen=True)
class RedisSettings:
    image: str
    memory_mb: int
    host_port: int | None


@dataclass(frozen=True)
class ProxySettings:
    image: str
    http_port: int
    https_port: int


@dataclass(frozen=True)
class TlsSettings:
    mode: str
    cert_file: Path | None
    key_file: Path | None
    # Read at `pulumi up` for mode=files; the key is handed on only as a secret Output.
    cert_pem: str | None = None
    key_pem: str | None = None
    not_after: datetime.datetime | None = None


@dataclass(frozen=True)
class MonitoringSettings:
    enabled: bool
    prometheus_image: str
    grafana_image: str
    prometheus_port: int
    grafana_port: int


@dataclass(frozen=True)
class BackupSettings:
    dir: Path
    keep: int
    scheduler: bool
    schedule: str


@dataclass(frozen=True)
class HealthSettings:
    timeout_seconds: int
    interval_seconds: int
    probe_address: str


@dataclass(frozen=True)
class PreflightSettings:
    min_free_gb: int


@dataclass(frozen=True)
class RestoreSettings:
    file: Path
    sha256: str


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
    backup: BackupSettings
    health: HealthSettings
    preflight: PreflightSettings
    restore: RestoreSettings | None
    docker_host: str | None
    # Operator-supplied secrets by key; keys left unset are generated.
    secrets: Mapping[str, str]

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
        claims = _host_port_claims(self.proxy, self.postgres, self.redis, self.monitoring, self.tls)
        return [f"{address}:{port}" for _, address, port in claims]

    def fingerprint(self) -> str:
        """Changes with any setting; secret values and key material are left out."""
        public = dataclasses.replace(
            self, secrets=dict.fromkeys(sorted(self.secrets), "set"), tls=dataclasses.replace(self.tls, key_pem=None)
        )
        return hashlib.sha256(repr(public).encode()).hexdigest()


def _url(scheme: str, host: str, port: int, default_port: int) -> str:
    return f"{scheme}://{host}" if port == default_port else f"{scheme}://{host}:{port}"


T = TypeVar("T")


class _Section:
    """One structured config value: typed getters that name the full key in errors."""

    def __init__(self, key: str, raw: Any, allowed: tuple[str, ...]) -> None:
        self.key = key
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{self.key}: expected an object, got {type(raw).__name__}. "
                f"Set its fields with `pulumi config set --path '{self.key}.<field>' <value>`."
            )
        for name in raw:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(
                    f"{self.key}: unknown key '{name}'.{hint} Allowed keys: {', '.join(allowed)}. "
                    f"Remove it with `pulumi config rm --path '{self.key}.{name}'`."
                )
        self.raw: dict[str, Any] = raw

    def full_key(self, name: str) -> str:
        return f"{self.key}.{name}"

    def text(self, name: str, default: str | None) -> str | None:
        value = self.raw.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.full_key(name)}: expected a non-empty string, got {value!r}.")
        return value.strip()

    def integer(self, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
        value = self.raw.get(name, default)
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.full_key(name)}: expected a whole number, got {value!r}.")
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"{self.full_key(name)}: {value} is outside {minimum}-{maximum}. "
                f"Set it with `pulumi config set --path '{self.full_key(name)}' <number>`."
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw.get(name, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"{self.full_key(name)}: expected true or false, got {value!r}.")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise ConfigError(f"{self.full_key(name)}: unknown value {value!r}. Use one of: {', '.join(choices)}.")
        return value


def _port(section: _Section, name: str, default: int | None) -> int | None:
    return section.integer(name, default, 1, 65535)


def _memory(section: _Section, name: str, default: int, service: str) -> int:
    floor = MIN_MEMORY_MB[service]
    value = section.integer(name, default, 1, 1024 * 1024)
    assert value is not None
    if value < floor:
        raise ConfigError(
            f"{section.full_key(name)}: {value} MB is below the floor of {floor} MB for {service}; "
            f"raise it (default {default})."
        )
    return value


def _resolve(path: str) -> Path:
    # Pulumi runs the program from the project folder, so relative paths are relative to it.
    return Path(os.path.expanduser(path)).resolve()


class _Loader:
    """Reads raw values from pulumi.Config plus the secret-key set; kept separate for tests."""

    def __init__(self, config: pulumi.Config, is_secret: Callable[[str], bool]) -> None:
        self.config = config
        self.is_secret = is_secret

    def section(self, name: str) -> _Section:
        key = f"{NAMESPACE}:{name}"
        allowed = STRUCTURED_KEYS[name]
        raw = self.config.get(name)
        if raw is None:
            return _Section(key, None, allowed)
        try:
            parsed = self.config.get_object(name)
        except Exception:
            parsed = raw  # a plain string: _Section reports it with the fix
        return _Section(key, parsed, allowed)

    def text(self, name: str, default: str | None) -> str | None:
        value = self.config.get(name)
        if value is None:
            return default
        if not value.strip():
            raise ConfigError(f"{NAMESPACE}:{name}: must not be empty; remove it to use the default.")
        return value.strip()

    def secret(self, name: str) -> str | None:
        key = f"{NAMESPACE}:{name}"
        value = self.config.get(name)
        if value is None:
            return None
        if not self.is_secret(key):
            raise ConfigError(
                f"{key}: is stored in plain text. Remove it and set it again as a secret: "
                f"`pulumi config rm {key} && pulumi config set --secret {key} <value>`."
            )
        return value


def _configured_keys() -> set[str]:
    # The engine hands config over either in-process or through PULUMI_CONFIG.
    return set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.config.get_config_env())


def _check_top_level_keys(keys: set[str]) -> None:
    known = (*PLAIN_KEYS, *STRUCTURED_KEYS, *SECRET_KEYS)
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
    loader = _Loader(
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

    api = _load_api(loader)
    postgres = _load_postgres(loader)
    redis = _load_redis(loader)
    proxy = _load_proxy(loader)
    tls = _load_tls(loader, app_env)
    monitoring = _load_monitoring(loader)
    backup = _load_backup(loader, app_env)
    health = _load_health(loader)
    preflight = _load_preflight(loader)
    _check_port_clashes(_host_port_claims(proxy, postgres, redis, monitoring, tls))
    secrets = _load_secrets(loader)
    restore = _load_restore(loader)
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
        backup=backup,
        health=health,
        preflight=preflight,
        restore=restore,
        docker_host=docker_host,
        secrets=secrets,
    )


def _load_api(loader: _Loader) -> ApiSettings:
    s = loader.section("api")
    source_text = s.text("source", None)
    image = s.text("image", None)
    if (source_text is None) == (image is None):
        raise ConfigError(
            f"{s.key}: set exactly one of 'source' (a Catalogizer checkout to build) or 'image' "
            f"(a prebuilt image reference); {'both are' if image else 'neither is'} set. "
            f"Example: `pulumi config set --path '{s.key}.source' ../Catalogizer`."
        )
    dockerfile = s.text("dockerfile", "catalog-api/Dockerfile")
    assert dockerfile is not None
    source = None
    if source_text is not None:
        source = _resolve(source_text)
        if not (source / dockerfile).is_file():
            raise ConfigError(
                f"{s.key}.source: no {dockerfile} under {source}. Point 'source' at the ROOT of a "
                "Catalogizer checkout (the Dockerfile copies submodules/ from there), "
                f"or set '{s.key}.dockerfile' if it lives elsewhere."
            )
    go_version = s.text("goVersion", "1.25")
    assert go_version is not None
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", go_version):
        raise ConfigError(f"{s.key}.goVersion: {go_version!r} is not a Go version like 1.25.")
    replicas = s.integer("replicas", 1, -(10**6), 10**6)
    assert replicas is not None
    if replicas < 1 or replicas > 16:
        raise ConfigError(f"{s.key}.replicas: {replicas} is not allowed; use 1 to 16 API containers.")
    admin = s.text("adminUsername", "admin")
    assert admin is not None
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{3,64}", admin):
        raise ConfigError(f"{s.key}.adminUsername: use 3-64 letters, digits or _.@-")
    cors = s.text("corsOrigins", None)
    origins = tuple(o.strip() for o in (cors or "").split(",") if o.strip())
    for origin in origins:
        if not re.fullmatch(r"https?://[^\s,/]+", origin):
            raise ConfigError(
                f"{s.key}.corsOrigins: {origin!r} is not an origin; use a comma-separated list "
                "like https://catalog.example.com,https://admin.example.com."
            )
    media_root = s.text("mediaRoot", "/opt/catalogizer/media")
    assert media_root is not None
    return ApiSettings(
        source=source,
        dockerfile=dockerfile,
        go_version=go_version,
        image=image,
        replicas=replicas,
        memory_mb=_memory(s, "memoryMb", 2048, "api"),
        admin_username=admin,
        cors_origins=origins,
        media_root=_resolve(media_root),
        log_level=s.choice("logLevel", "info", LOG_LEVELS),
    )


def _load_postgres(loader: _Loader) -> PostgresSettings:
    s = loader.section("postgres")
    names = {}
    for field in ("user", "database"):
        value = s.text(field, "catalogizer")
        assert value is not None
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ConfigError(f"{s.key}.{field}: {value!r} is not a plain PostgreSQL identifier (a-z, 0-9, _).")
        names[field] = value
    image = s.text("image", "postgres:15-alpine")
    assert image is not None
    return PostgresSettings(
        image=image,
        user=names["user"],
        database=names["database"],
        memory_mb=_memory(s, "memoryMb", 2048, "postgres"),
        host_port=_port(s, "hostPort", None),
    )


def _load_redis(loader: _Loader) -> RedisSettings:
    s = loader.section("redis")
    image = s.text("image", "redis:7-alpine")
    assert image is not None
    return RedisSettings(
        image=image, memory_mb=_memory(s, "memoryMb", 512, "redis"), host_port=_port(s, "hostPort", None)
    )


def _load_proxy(loader: _Loader) -> ProxySettings:
    s = loader.section("proxy")
    image = s.text("image", "nginx:1.27-alpine")
    http_port = _port(s, "httpPort", 80)
    https_port = _port(s, "httpsPort", 443)
    assert image is not None and http_port is not None and https_port is not None
    return ProxySettings(image=image, http_port=http_port, https_port=https_port)


def _load_tls(loader: _Loader, app_env: str) -> TlsSettings:
    s = loader.section("tls")
    mode = s.choice("mode", "selfSigned", TLS_MODES)
    if mode == "off" and app_env == "production":
        raise ConfigError(
            f"{s.key}.mode: 'off' (plain HTTP) is refused for appEnv=production; "
            "use 'files' with your certificate or 'selfSigned'."
        )
    if mode != "files":
        for name in ("certFile", "keyFile"):
            if name in s.raw:
                raise ConfigError(f"{s.key}.{name}: only used with mode=files; remove it or set mode=files.")
        return TlsSettings(mode=mode, cert_file=None, key_file=None)
    paths = {}
    contents = {}
    for name in ("certFile", "keyFile"):
        text = s.text(name, None)
        if text is None:
            example = "ssl/cert.pem" if name == "certFile" else "ssl/key.pem"
            raise ConfigError(
                f"{s.key}.{name}: required with mode=files; e.g. `pulumi config set --path '{s.key}.{name}' {example}`."
            )
        path = _resolve(text)
        try:
            contents[name] = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{s.key}.{name}: cannot read {path}: {exc.strerror}. Check the path and permissions."
            ) from None
        paths[name] = path
    try:
        cert = x509.load_pem_x509_certificates(contents["certFile"])[0]
    except ValueError:
        raise ConfigError(f"{s.key}.certFile: {paths['certFile']} is not a PEM certificate.") from None
    try:
        key = serialization.load_pem_private_key(contents["keyFile"], password=None)
    except (ValueError, TypeError):
        # The parser's message could quote key material, so it is not repeated here.
        raise ConfigError(f"{s.key}.keyFile: {paths['keyFile']} is not an unencrypted PEM private key.") from None
    public_der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public_der) != cert.public_key().public_bytes(*public_der):
        raise ConfigError(
            f"{s.key}.keyFile: the key in {paths['keyFile']} does not match the certificate in "
            f"{paths['certFile']}; use the key the certificate was issued for."
        )
    not_after = cert.not_valid_after_utc
    if not_after <= datetime.datetime.now(datetime.UTC):
        raise ConfigError(
            f"{s.key}.certFile: the certificate in {paths['certFile']} expired on {not_after:%Y-%m-%d}; renew it."
        )
    return TlsSettings(
        mode=mode,
        cert_file=paths["certFile"],
        key_file=paths["keyFile"],
        cert_pem=contents["certFile"].decode(),
        key_pem=contents["keyFile"].decode(),
        not_after=not_after,
    )


def _load_monitoring(loader: _Loader) -> MonitoringSettings:
    s = loader.section("monitoring")
    prom_image = s.text("prometheusImage", "prom/prometheus:v2.53.2")
    grafana_image = s.text("grafanaImage", "grafana/grafana:11.2.0")
    prom_port = _port(s, "prometheusPort", 9090)
    grafana_port = _port(s, "grafanaPort", 3000)
    assert prom_image and grafana_image and prom_port and grafana_port
    return MonitoringSettings(
        enabled=s.boolean("enabled", False),
        prometheus_image=prom_image,
        grafana_image=grafana_image,
        prometheus_port=prom_port,
        grafana_port=grafana_port,
    )


def _load_backup(loader: _Loader, app_env: str) -> BackupSettings:
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
        dir=_resolve(directory),
        keep=keep,
        # The runbook's nightly dump is a production habit; other stacks opt in.
        scheduler=s.boolean("scheduler", app_env == "production"),
        schedule=schedule,
    )


def _load_health(loader: _Loader) -> HealthSettings:
    s = loader.section("health")
    timeout = s.integer("timeoutSeconds", 120, 5, 3600)
    interval = s.integer("intervalSeconds", 2, 1, 60)
    probe = s.text("probeAddress", "127.0.0.1")
    assert timeout is not None and interval is not None and probe is not None
    if interval >= timeout:
        raise ConfigError(f"{s.key}.intervalSeconds: {interval} must be shorter than timeoutSeconds ({timeout}).")
    return HealthSettings(timeout_seconds=timeout, interval_seconds=interval, probe_address=probe)


def _load_preflight(loader: _Loader) -> PreflightSettings:
    s = loader.section("preflight")
    floor = s.integer("minFreeGb", 10, 0, 100_000)
    assert floor is not None
    return PreflightSettings(min_free_gb=floor)


def _host_port_claims(
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
        ]
    return [(key, address, port) for key, address, port in claims if port is not None]


def _check_port_clashes(claims: list[tuple[str, str, int]]) -> None:
    seen: dict[int, str] = {}
    for key, _, port in claims:
        if port in seen:
            raise ConfigError(
                f"{key}: host port {port} is already used by {seen[port]}; give each service its own port."
            )
        seen[port] = key


def _load_secrets(loader: _Loader) -> dict[str, str]:
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


def _load_restore(loader: _Loader) -> RestoreSettings | None:
    text = loader.text("restoreFrom", None)
    if text is None:
        return None
    key = f"{NAMESPACE}:restoreFrom"
    path = _resolve(text)
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
