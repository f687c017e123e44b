"""Starts the stack's services on a real engine the way the Pulumi program declares them.

The settings mirror components/postgres.py, components/redis.py, components/api.py and
components/proxy.py, so what passes here is what the program deploys.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from certs import CertPair, write_self_signed
from docker.models.containers import Container
from docker.models.networks import Network
from docker.models.volumes import Volume
from docker_harness import DockerScope, healthcheck, http_request, wait_healthy
from images import tags
from ports import free_port

from components.backup_scheduler import DOCKERFILE as SCHEDULER_DOCKERFILE
from components.container_defaults import HARDENING, TMPFS_OPTIONS
from components.hook_support import PROJECT_DIR
from rendering.nginx import NginxSite, render_nginx_conf
from rendering.redis import CONF_PATH as REDIS_CONF_PATH
from rendering.redis import render_redis_conf

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

PG_USER = "catalogizer"
PG_DB = "catalogizer"
PG_DATA_DIR = "/var/lib/postgresql/data"
# Same subfolder layout as the program (and Catalogizer's compose file).
PG_PGDATA = f"{PG_DATA_DIR}/pgdata"
PG_COMMAND = ["postgres", "-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track=all"]
API_PORT = tags.API_PORT


def hardened_kwargs(role: str, cpus: str | None = None) -> dict[str, Any]:
    """The program's hardening inputs (container_defaults.hardening_inputs), as docker-py arguments."""
    spec = HARDENING[role]
    kwargs: dict[str, Any] = {
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "cap_add": list(spec.cap_add),
        "nano_cpus": int(float(cpus or spec.cpus) * 1e9),
        "ulimits": [docker.types.Ulimit(name="nproc", soft=spec.nproc, hard=spec.nproc)],
    }
    if spec.read_only:
        kwargs["read_only"] = True
        kwargs["tmpfs"] = dict.fromkeys(spec.tmpfs, TMPFS_OPTIONS)
    if spec.user:
        kwargs["user"] = spec.user
    return kwargs


def start_postgres(
    scope: DockerScope, network: Network, volume: Volume, password: str, suffix: str = "postgres"
) -> Container:
    container = scope.container(
        tags.POSTGRES,
        suffix,
        network=network,
        aliases=["postgres"],
        environment={
            "POSTGRES_USER": PG_USER,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": PG_DB,
            "PGDATA": PG_PGDATA,
        },
        command=PG_COMMAND,
        healthcheck=healthcheck(["CMD", "pg_isready", "-h", "127.0.0.1", "-U", PG_USER, "-d", PG_DB]),
        volumes={volume.name: {"bind": PG_DATA_DIR, "mode": "rw"}},
        shm_size="256m",
        ports={5432: None},
    )
    wait_healthy(container, timeout=90)
    return container


def start_redis(scope: DockerScope, network: Network, password: str) -> Container:
    container = scope.container(
        tags.REDIS,
        "redis",
        network=network,
        aliases=["redis"],
        command=["redis-server", REDIS_CONF_PATH],
        files={REDIS_CONF_PATH: render_redis_conf(password, 256)},
        environment={"REDISCLI_AUTH": password},
        healthcheck=healthcheck(["CMD-SHELL", "redis-cli ping | grep -q PONG"]),
        volumes={scope.volume("redis-data").name: {"bind": "/data", "mode": "rw"}},
    )
    wait_healthy(container, timeout=60)
    return container


def api_env(pg_password: str, redis_password: str | None, host: str | None = "0.0.0.0") -> dict[str, str]:
    env = {
        "PORT": str(API_PORT),
        "GIN_MODE": "release",
        "DATABASE_TYPE": "postgres",
        "DATABASE_HOST": "postgres",
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": PG_DB,
        "DATABASE_USER": PG_USER,
        "DATABASE_PASSWORD": pg_password,
        "DATABASE_SSL_MODE": "disable",
        "JWT_SECRET": secrets.token_hex(24),
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": secrets.token_urlsafe(12),
    }
    if host is not None:
        env["HOST"] = host
    if redis_password is not None:
        env["REDIS_ADDR"] = "redis:6379"
        env["REDIS_PASSWORD"] = redis_password
    return env


def start_api(
    scope: DockerScope,
    network: Network,
    image: str,
    env: dict[str, str],
    suffix: str = "api",
    **kwargs: Any,
) -> Container:
    kwargs.setdefault(
        "healthcheck",
        healthcheck(["CMD-SHELL", f"wget -q -O /dev/null http://localhost:{API_PORT}/health || exit 1"]),
    )
    return scope.container(
        image, suffix, network=network, aliases=["api"], environment=env, ports={API_PORT: None}, **kwargs
    )


def get_json(port: int, path: str) -> tuple[int, Any]:
    status, _, body = http_request("GET", path, port)
    return status, json.loads(body)


def psql_exec(scope: DockerScope, pg: Container, sql: str) -> str:
    # Local unix-socket connection: trust auth, exactly as in the official image.
    rc, out = scope.exec(pg, ["psql", "-v", "ON_ERROR_STOP=1", "-U", PG_USER, "-d", PG_DB, "-tAc", sql])
    assert rc == 0, out
    return out.strip()


def start_nginx(scope: DockerScope, network: Network, certs: CertPair, https_port: int | None = None) -> Container:
    """nginx with the program's rendered config and TLS material, on 127.0.0.1 ports."""

    https_port = https_port or free_port()
    site = NginxSite(server_name="localhost", tls_enabled=True, hsts=False, public_https_port=https_port)
    container = scope.container(
        tags.NGINX,
        "nginx",
        network=network,
        files={
            "/etc/nginx/nginx.conf": render_nginx_conf(site),
            site.cert_path: certs.cert_pem,
            site.key_path: (certs.key_pem, 0o600),
        },
        healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/nginx-health"]),
        ports={443: https_port},
    )
    wait_healthy(container, timeout=30)
    return container


@dataclass
class MiniStack:
    """Postgres, Redis, the stand-in API and nginx on one test network."""

    network: Network
    postgres: Container
    redis: Container
    api: Container
    nginx: Container
    certs: CertPair
    pg_password: str
    redis_password: str
    https_port: int

    def hook_env(self, backup_dir: Path, **extra: str) -> dict[str, str]:
        """The environment the program's Command resources hand the hook scripts."""
        return {
            "PG_CONTAINER": self.postgres.name,
            "PGUSER": PG_USER,
            "PGDATABASE": PG_DB,
            "PGPASSWORD": self.pg_password,
            "BACKUP_DIR": str(backup_dir),
            "BACKUP_KEEP": "10",
            "STACK_NAME": "cztest",
            "HEALTH_URL": f"https://localhost:{self.https_port}/health",
            "HEALTH_CONNECT_ADDRESS": "127.0.0.1",
            "HEALTH_CA_PEM": self.certs.cert_pem,
            "NGINX_CONTAINER": self.nginx.name,
            "API_CONTAINERS": self.api.name,
            "REDIS_CONTAINER": self.redis.name,
            "REDIS_PASSWORD": self.redis_password,
            **extra,
        }


def start_stack(scope: DockerScope, cert_dir: Path, api_image: str = tags.API_V1) -> MiniStack:
    network = scope.network()
    pg_password, redis_password = secrets.token_hex(16), secrets.token_hex(16)
    postgres = start_postgres(scope, network, scope.volume("pg-data"), pg_password)
    redis = start_redis(scope, network, redis_password)
    api = start_api(scope, network, api_image, api_env(pg_password, redis_password))
    if api_image != tags.API_BROKEN:
        wait_healthy(api, timeout=60)
    certs = write_self_signed(cert_dir)
    https_port = free_port()
    nginx = start_nginx(scope, network, certs, https_port)
    return MiniStack(network, postgres, redis, api, nginx, certs, pg_password, redis_password, https_port)


def run_hook(script: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # Only what the Command resource passes, plus PATH for the docker CLI.
    full = {"PATH": os.environ["PATH"], **env}
    if "DOCKER_HOST" in os.environ:
        full.setdefault("DOCKER_HOST", os.environ["DOCKER_HOST"])
    return subprocess.run(
        [sys.executable, str(script)], env=full, capture_output=True, text=True, timeout=timeout, check=False
    )


SCHEDULER_TAG = "catalogizer-test/backup-scheduler:latest"


def build_scheduler(scope: DockerScope) -> str:
    """The scheduler image as components/backup_scheduler.py builds it, on the test PostgreSQL.

    Docker's layer cache makes this near-instant after the first build.
    """
    image, _ = scope.client.images.build(
        path=str(PROJECT_DIR),
        dockerfile=str(SCHEDULER_DOCKERFILE.relative_to(PROJECT_DIR)),
        buildargs={"BASE_IMAGE": tags.POSTGRES},
        tag=SCHEDULER_TAG,
        rm=True,
    )
    return str(image.id)

