"""The application's services: the API, PostgreSQL and Redis."""

from __future__ import annotations

import re
from pathlib import Path

from settings.model import LOG_LEVELS, ApiSettings, PostgresSettings, RedisSettings
from settings.reader import ConfigError, Loader, memory, port, resolve


def load_api(loader: Loader) -> ApiSettings:
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
        source = resolve(source_text)
        if not (source / dockerfile).is_file():
            raise ConfigError(
                f"{s.key}.source: no {dockerfile} under {source}. Point 'source' at the ROOT of a "
                "Catalogizer checkout (the Dockerfile copies submodules/ from there), "
                f"or set '{s.key}.dockerfile' if it lives elsewhere."
            )
        _require_submodules(s.key, source)
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
    # Without it pulumi-docker builds for the machine running Pulumi (its Image Check), which
    # breaks an arm64 workstation deploying to an amd64 host; preflight compares it with the host.
    platform = s.text("platform", "linux/amd64")
    assert platform is not None
    if not re.fullmatch(r"linux/(amd64|arm64|arm/v[5-7]|386|ppc64le|s390x|riscv64)", platform):
        raise ConfigError(
            f"{s.key}.platform: {platform!r} is not a Linux platform Docker builds for; use the Docker host's "
            f"`docker version --format '{{{{.Server.Os}}}}/{{{{.Server.Arch}}}}'`, e.g. linux/amd64 or linux/arm64."
        )
    return ApiSettings(
        source=source,
        dockerfile=dockerfile,
        go_version=go_version,
        image=image,
        replicas=replicas,
        memory_mb=memory(s, "memoryMb", 2048, "api"),
        admin_username=admin,
        cors_origins=origins,
        media_root=resolve(media_root),
        log_level=s.choice("logLevel", "info", LOG_LEVELS),
        platform=platform,
    )


def _require_submodules(key: str, source: Path) -> None:
    """Refuse a checkout whose git submodules are missing: Catalogizer's Dockerfile cannot build it.

    catalog-api/Dockerfile COPYs each submodules/<name>/ (go.mod replaces point there). A clone
    without --recurse-submodules has the folders but leaves them empty, which only fails deep
    inside `docker build`, after Postgres and Redis were already created.
    """
    fix = f"run `git -C {source} submodule update --init --recursive` (or clone with --recurse-submodules)"
    folder = source / "submodules"
    if not folder.is_dir():
        raise ConfigError(f"{key}.source: {source} has no submodules/ folder, which the API Dockerfile copies; {fix}.")
    modules = sorted(p for p in folder.iterdir() if p.is_dir())
    empty = [p.name for p in modules if not any(p.iterdir())]
    if not modules or empty:
        which = "submodules/ is empty" if not modules else f"submodules {', '.join(empty)} are empty"
        raise ConfigError(f"{key}.source: in {source}, {which}: the git submodules were not checked out; {fix}.")


def load_postgres(loader: Loader) -> PostgresSettings:
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
        memory_mb=memory(s, "memoryMb", 2048, "postgres"),
        host_port=port(s, "hostPort", None),
    )


def load_redis(loader: Loader) -> RedisSettings:
    s = loader.section("redis")
    image = s.text("image", "redis:7-alpine")
    assert image is not None
    return RedisSettings(
        image=image, memory_mb=memory(s, "memoryMb", 512, "redis"), host_port=port(s, "hostPort", None)
    )
