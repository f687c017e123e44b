"""The locally built images behave like the official ones where the deployment relies on them.

Every test runs real containers; the settings below mirror what the Pulumi
program uses (components/postgres.py, components/redis.py, rendering/redis.py)
so a passing test means the program's configuration works on these images.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time

import pytest
from docker.models.containers import Container
from docker_harness import DockerScope, healthcheck, http_request, wait_health_status, wait_healthy, wait_http
from images import tags
from services import (
    PG_DB,
    PG_USER,
    api_env,
    get_json,
    psql_exec,
    start_api,
    start_postgres,
    start_redis,
)

API_PORT = tags.API_PORT


# --------------------------------------------------------------------------- postgres


def test_postgres_auth_and_pg_stat_statements(docker_scope: DockerScope) -> None:
    net = docker_scope.network()
    password = secrets.token_urlsafe(18)
    pg = start_postgres(docker_scope, net, docker_scope.volume("pgdata"), password)

    assert psql_exec(docker_scope, pg, "SHOW shared_preload_libraries") == "pg_stat_statements"
    psql_exec(docker_scope, pg, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    assert int(psql_exec(docker_scope, pg, "SELECT count(*) FROM pg_stat_statements")) > 0
    assert psql_exec(docker_scope, pg, "SHOW listen_addresses") == "*"
    assert (
        psql_exec(
            docker_scope, pg, f"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = '{PG_USER}'"
        )
        == "t"
    )
    # Server processes run as postgres, never root.
    rc, out = docker_scope.exec(pg, ["sh", "-c", "stat -c %U /proc/1 && ls -a /var/run/postgresql"])
    assert rc == 0 and out.split()[0] == "postgres" and ".s.PGSQL.5432" in out, out
    for tool in ("pg_isready", "pg_dump", "pg_restore", "psql"):
        rc, out = docker_scope.exec(pg, ["sh", "-c", f"command -v {tool} && {tool} --version"])
        assert rc == 0 and "15." in out, out

    def psql_over_network(pw: str) -> tuple[int, str]:
        return docker_scope.run_once(
            tags.POSTGRES,
            ["psql", "-h", "postgres", "-U", PG_USER, "-d", PG_DB, "-tAc", "SELECT current_user"],
            network=net,
            environment={"PGPASSWORD": pw, "PGCONNECT_TIMEOUT": "5"},
        )

    rc, out = psql_over_network(password)
    assert rc == 0 and out.strip() == PG_USER, out
    rc, out = psql_over_network(password + "-wrong")
    assert rc != 0 and "password authentication failed" in out, out

    # The published port is on loopback only and speaks SCRAM to the host's psql too.
    host_psql = shutil.which("psql")
    assert host_psql, "host psql missing: run .ci/setup-host.sh (installs postgresql-client)"
    port = docker_scope.host_port(pg, 5432)
    proc = subprocess.run(
        [host_psql, "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-d", PG_DB, "-tAc", "SELECT 42"],
        env={"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "42", proc.stderr
    pg.reload()
    bindings = pg.attrs["NetworkSettings"]["Ports"]["5432/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, bindings


def test_postgres_data_survives_container_replacement(docker_scope: DockerScope) -> None:
    net = docker_scope.network()
    volume = docker_scope.volume("pgdata")
    password = secrets.token_urlsafe(18)
    first = start_postgres(docker_scope, net, volume, password, suffix="postgres-1")
    psql_exec(docker_scope, first, "CREATE TABLE survivors (name text); INSERT INTO survivors VALUES ('kept')")

    started = time.monotonic()
    docker_scope.remove(first)
    stop_seconds = time.monotonic() - started
    # SIGINT (the image's STOPSIGNAL) is a fast shutdown; hitting the 30 s kill would mean it was ignored.
    assert stop_seconds < 20, f"postgres took {stop_seconds:.1f}s to stop"

    second = start_postgres(docker_scope, net, volume, password, suffix="postgres-2")
    assert psql_exec(docker_scope, second, "SELECT name FROM survivors") == "kept"
    logs = second.logs().decode()
    assert "skipping initialization" in logs, logs
    # The previous shutdown was clean, so no crash recovery ran.
    assert "database system was not properly shut down" not in logs, logs


# --------------------------------------------------------------------------- redis


def test_redis_requires_password(docker_scope: DockerScope) -> None:
    net = docker_scope.network()
    password = secrets.token_hex(16)
    redis = start_redis(docker_scope, net, password)

    rc, out = docker_scope.exec(redis, ["sh", "-c", "env -u REDISCLI_AUTH redis-cli ping"])
    assert "NOAUTH" in out, out
    rc, out = docker_scope.exec(redis, ["redis-cli", "ping"], environment={"REDISCLI_AUTH": password})
    assert rc == 0 and out.strip() == "PONG", out

    rc, out = docker_scope.run_once(tags.REDIS, ["redis-cli", "-h", "redis", "ping"], network=net)
    assert "NOAUTH" in out, out
    rc, out = docker_scope.run_once(
        tags.REDIS, ["redis-cli", "-h", "redis", "ping"], network=net, environment={"REDISCLI_AUTH": password}
    )
    assert rc == 0 and out.strip() == "PONG", out

    # Runs as the redis user and persists to /data as configured.
    rc, out = docker_scope.exec(redis, ["sh", "-c", "stat -c %U /proc/1 && redis-cli config get dir"])
    assert rc == 0 and out.split()[0] == "redis" and "/data" in out, out
    rc, out = docker_scope.exec(redis, ["sh", "-c", "redis-cli set k v && ls /data"])
    assert rc == 0 and "appendonlydir" in out, out


# --------------------------------------------------------------------------- stand-in API


def test_api_standin_serves_and_keeps_data_across_replacement(docker_scope: DockerScope) -> None:
    net = docker_scope.network()
    pg_password = secrets.token_urlsafe(18)
    redis_password = secrets.token_hex(16)
    start_postgres(docker_scope, net, docker_scope.volume("pgdata"), pg_password)
    start_redis(docker_scope, net, redis_password)
    env = api_env(pg_password, redis_password)

    api = start_api(docker_scope, net, tags.API_V1, env, suffix="api-v1")
    wait_healthy(api, timeout=60)
    port = docker_scope.host_port(api, API_PORT)

    status, body = get_json(port, "/health")
    assert status == 200 and body["status"] == "healthy" and body["version"] == "v1", body
    status, body = get_json(port, "/health/deep")
    assert status == 200 and body["database"] == "ok" and body["redis"] == "ok", body

    for name in ("first", "second"):
        status, _, raw = http_request(
            "POST",
            "/api/v1/items",
            port,
            body=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 201, raw
    status, body = get_json(port, "/api/v1/items")
    assert status == 200 and [i["name"] for i in body["items"]] == ["first", "second"], body

    status, _, metrics = http_request("GET", "/metrics", port)
    text = metrics.decode()
    assert status == 200 and 'catalogizer_build_info{version="v1"} 1' in text, text
    assert 'catalogizer_http_requests_total{method="POST",path="/api/v1/items",status="201"} 2' in text, text

    # Other containers (nginx, Prometheus) reach it by its network alias.
    rc, out = docker_scope.run_once(
        tags.PYTHON_RUNTIME, ["wget", "-q", "-T", "5", "-O", "-", f"http://api:{API_PORT}/health"], network=net
    )
    assert rc == 0 and '"healthy"' in out, out

    rc, out = docker_scope.exec(api, ["sh", "-c", "id -u && cat /app/logs/api.log"])
    assert rc == 0 and out.splitlines()[0] == str(tags.API_UID) and "POST /api/v1/items status=201" in out, out

    # Replace v1 with v2 the way an update does: stop (SIGTERM), remove, start.
    started = time.monotonic()
    api.stop(timeout=20)
    assert time.monotonic() - started < 10, "SIGTERM was not handled; docker had to kill the API"
    api.reload()
    assert api.attrs["State"]["ExitCode"] == 0, _tail(api)
    assert "shutdown complete" in api.logs().decode()
    docker_scope.remove(api)

    api2 = start_api(docker_scope, net, tags.API_V2, env, suffix="api-v2")
    wait_healthy(api2, timeout=60)
    port2 = docker_scope.host_port(api2, API_PORT)
    status, body = get_json(port2, "/health")
    assert status == 200 and body["version"] == "v2", body
    status, body = get_json(port2, "/api/v1/items")
    assert [(i["name"], i["created_by_version"]) for i in body["items"]] == [("first", "v1"), ("second", "v1")], body


def test_api_standin_default_host_is_unreachable_from_other_containers(docker_scope: DockerScope) -> None:
    """HOST left at Catalogizer's default: the in-container GET probe passes, yet nobody else can connect."""
    net = docker_scope.network()
    pg_password = secrets.token_urlsafe(18)
    start_postgres(docker_scope, net, docker_scope.volume("pgdata"), pg_password)
    # The program's kind of probe (GET on localhost) is the one that is fooled.
    api = start_api(docker_scope, net, tags.API_V1, api_env(pg_password, None, host=None))
    wait_healthy(api, timeout=60)

    rc, out = docker_scope.exec(api, ["wget", "-q", "-O", "-", f"http://localhost:{API_PORT}/health"])
    assert rc == 0 and '"healthy"' in out, out
    rc, out = docker_scope.run_once(
        tags.PYTHON_RUNTIME,
        ["wget", "-q", "-T", "5", "-t", "1", "-O", "-", f"http://api:{API_PORT}/health"],
        network=net,
    )
    assert rc != 0, f"API bound to localhost was reachable from another container: {out}"
    # The published port leads nowhere either.
    port = docker_scope.host_port(api, API_PORT)
    with pytest.raises(OSError):
        http_request("GET", "/health", port, timeout=5)


def test_api_standin_broken_image_fails_health(docker_scope: DockerScope) -> None:
    net = docker_scope.network()
    pg_password = secrets.token_urlsafe(18)
    start_postgres(docker_scope, net, docker_scope.volume("pgdata"), pg_password)
    api = start_api(
        docker_scope,
        net,
        tags.API_BROKEN,
        api_env(pg_password, None),
        healthcheck=healthcheck(
            ["CMD-SHELL", f"wget -q -O /dev/null http://localhost:{API_PORT}/health || exit 1"], retries=2
        ),
    )
    port = docker_scope.host_port(api, API_PORT)
    body = wait_http(port, "/health", status=500, timeout=60)
    assert json.loads(body) == {"status": "unhealthy"}
    wait_health_status(api, "unhealthy", timeout=30)
    # The process itself is fine (a deploy must roll back, not wait for a crash).
    status, deep = get_json(port, "/health/deep")
    assert status == 200 and deep["database"] == "ok", deep


def test_api_standin_validates_config_only_on_restart(docker_scope: DockerScope) -> None:
    """Like Catalogizer's LoadConfig: the first start writes config.json unvalidated, a restart validates it."""
    net = docker_scope.network()
    pg_password = secrets.token_urlsafe(18)
    start_postgres(docker_scope, net, docker_scope.volume("pgdata"), pg_password)
    env = api_env(pg_password, None)
    env["JWT_SECRET"] = "too-short"
    del env["ADMIN_PASSWORD"]
    api = start_api(docker_scope, net, tags.API_V1, env)
    wait_healthy(api, timeout=60)
    rc, out = docker_scope.exec(api, ["stat", "-c", "%u %a", "/app/config.json"])
    assert rc == 0 and out.split() == [str(tags.API_UID), "600"], out

    api.restart(timeout=10)
    result = api.wait(timeout=30)
    out = api.logs().decode(errors="replace")
    assert result["StatusCode"] == 1, out
    assert "JWT_SECRET must be at least 32 characters" in out, out


# --------------------------------------------------------------------------- nginx


def test_nginx_image_runs_uploaded_config(docker_scope: DockerScope) -> None:
    # Written for the official image (user nginx; logs to /var/log/nginx) to
    # prove configs aimed at nginx:alpine work unchanged here.
    conf = """
user nginx;
worker_processes 1;
pid /run/nginx.pid;
events { worker_connections 64; }
http {
    access_log /var/log/nginx/access.log;
    error_log /var/log/nginx/error.log warn;
    server {
        listen 80;
        location = /ping { return 200 "pong\\n"; }
    }
}
"""
    nginx = docker_scope.container(
        tags.NGINX,
        "nginx",
        ports={80: None},
        files={"/etc/nginx/nginx.conf": conf},
        healthcheck=healthcheck(["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/ping || exit 1"]),
    )
    wait_healthy(nginx, timeout=30)
    port = docker_scope.host_port(nginx, 80)
    status, _, body = http_request("GET", "/ping", port)
    assert status == 200 and body == b"pong\n"
    rc, out = docker_scope.exec(nginx, ["sh", "-c", "nginx -t 2>&1 && test -d /etc/nginx/tls && nginx -v 2>&1"])
    assert rc == 0 and "nginx/1.22" in out, out
    # Access log goes to stdout like the official image, so `docker logs` shows requests.
    deadline = time.monotonic() + 5
    while "GET /ping" not in nginx.logs().decode() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "GET /ping" in nginx.logs().decode()


def _tail(container: Container) -> str:
    return container.logs(tail=30).decode(errors="replace")
