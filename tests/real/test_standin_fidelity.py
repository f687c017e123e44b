"""The stand-in API behaves like the real Catalogizer API where the deployment depends on it.

Each test runs the stand-in image in Docker and checks one behaviour listed in
tests/standin_catalogizer/README.md (which names the Catalogizer or Gin source
it follows). The API health check is not copied here: it is read from what the
Pulumi program itself declares (run under mocks), so these tests judge the
program's probe against an API that answers HEAD the way Gin does.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import Container
from docker_harness import DockerScope, healthcheck, http_request, wait_health_status, wait_healthy
from images import tags
from services import api_env, get_json, psql_exec, start_postgres, start_redis
from workspace import Workspace

API_PORT = tags.API_PORT
# What components/api.py declared before issue 18: wget's --spider sends HEAD.
OLD_SPIDER_CHECK = ["CMD", "wget", "-q", "--spider", f"http://localhost:{API_PORT}/health"]
# GNU wget's exit status for "the server issued an error response" (here Gin's 404).
WGET_SERVER_ERROR = 8


def _seconds(go_duration: str) -> float:
    # The program writes Docker durations such as "5s" or "500ms".
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", go_duration)
    assert m, f"unexpected duration {go_duration!r}"
    value, unit = float(m.group(1)), m.group(2)
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


@pytest.fixture(scope="module")
def program_api_check(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The API container's health check exactly as the Pulumi program declares it (dev stack)."""
    deployment = Workspace(tmp_path_factory.mktemp("program")).deploy("dev")
    declared = deployment.container("api").inputs["healthcheck"]
    assert declared["tests"][0] in ("CMD", "CMD-SHELL"), declared
    return declared


def as_docker_healthcheck(
    declared: dict[str, Any],
    interval: float | None = None,
    retries: int | None = None,
    start_period: float | None = None,
) -> dict[str, Any]:
    """The program's check for docker-py; tests may shorten its timing, never its command."""
    return healthcheck(
        list(declared["tests"]),
        interval=_seconds(declared["interval"]) if interval is None else interval,
        timeout=_seconds(declared["timeout"]),
        retries=int(declared["retries"]) if retries is None else retries,
        start_period=_seconds(declared["startPeriod"]) if start_period is None else start_period,
    )


def start_standin(
    scope: DockerScope, net: Any, env: dict[str, str], check: dict[str, Any], suffix: str, **kwargs: Any
) -> Container:
    return scope.container(
        tags.API_V1,
        suffix,
        network=net,
        aliases=["api"],
        environment=env,
        ports={API_PORT: None},
        healthcheck=check,
        **kwargs,
    )


def wait_log(container: Container, needle: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        logs = container.logs().decode(errors="replace")
        if needle in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.3)


# --------------------------------------------------------------------------- the issue-18 regression


def test_program_health_check_makes_standin_healthy_and_spider_does_not(
    docker_scope: DockerScope, program_api_check: dict[str, Any]
) -> None:
    net = docker_scope.network()
    pg_password = secrets.token_urlsafe(18)
    start_postgres(docker_scope, net, docker_scope.volume("pgdata"), pg_password)
    env = api_env(pg_password, None)

    # The program's check with the program's own timing.
    api = start_standin(docker_scope, net, env, as_docker_healthcheck(program_api_check), "api-program-check")
    wait_healthy(api, timeout=90)
    port = docker_scope.host_port(api, API_PORT)

    # Gin: HEAD on a GET-only route is 404 "404 page not found", as is any other
    # method; only GET answers.
    status, _, _ = http_request("HEAD", "/health", port)
    assert status == 404
    status, headers, body = http_request("POST", "/health", port)
    assert (status, body) == (404, b"404 page not found") and headers["content-type"] == "text/plain", headers
    status, body_json = get_json(port, "/health")
    assert status == 200 and body_json["status"] == "healthy" and body_json["version"] == "v1", body_json
    status, _, _ = http_request("HEAD", "/metrics", port)
    assert status == 404
    status, headers, _ = http_request("GET", "/health/", port)
    assert status == 301 and headers["location"] == "/health", headers

    # The exact commands, run where Docker runs them: the program's exits 0, the
    # old --spider one exits with wget's "server error response".
    rc, out = docker_scope.exec(api, list(program_api_check["tests"][1:]))
    assert rc == 0, out
    rc, out = docker_scope.exec(api, OLD_SPIDER_CHECK[1:])
    assert rc == WGET_SERVER_ERROR, (rc, out)

    # A container judged by the old check never turns healthy (timing shortened so
    # Docker gives up in seconds; the command is unchanged).
    spider = start_standin(
        docker_scope,
        net,
        env,
        healthcheck(OLD_SPIDER_CHECK, interval=1, timeout=3, retries=3, start_period=0),
        "api-spider-check",
    )
    wait_health_status(spider, "unhealthy", timeout=60)
    spider.reload()
    probes = spider.attrs["State"]["Health"]["Log"]
    assert probes and all(p["ExitCode"] != 0 for p in probes), probes
    assert "HEAD /health status=404" in spider.logs().decode(errors="replace")
    # ...although the API behind it serves GET /health fine.
    status, body_json = get_json(docker_scope.host_port(spider, API_PORT), "/health")
    assert status == 200 and body_json["status"] == "healthy", body_json


# --------------------------------------------------------------------------- start-up behaviour


def test_standin_reads_catalogizer_names_writes_its_files_and_seeds_admin(
    docker_scope: DockerScope, program_api_check: dict[str, Any]
) -> None:
    """PORT/REDIS_ADDR are read, the runbook's API_PORT/REDIS_HOST are not; files land where the real API puts them."""
    net = docker_scope.network()
    pg_password, redis_password = secrets.token_urlsafe(18), secrets.token_hex(16)
    pg = start_postgres(docker_scope, net, docker_scope.volume("pgdata"), pg_password)
    start_redis(docker_scope, net, redis_password)
    env = api_env(pg_password, None)
    del env["PORT"]
    # Only the runbook's names: the API must ignore them (port stays 8080, Redis is
    # looked for on go-redis's default localhost:6379 and given up on).
    env.update({"API_PORT": "9090", "REDIS_HOST": "redis", "REDIS_PORT": "6379", "REDIS_PASSWORD": redis_password})
    api = start_standin(
        docker_scope, net, env, as_docker_healthcheck(program_api_check, interval=1, start_period=0), "api"
    )
    wait_healthy(api, timeout=60)
    logs = api.logs().decode(errors="replace")
    assert "listening on 0.0.0.0:8080" in logs, logs
    assert "redis at localhost:6379 unusable" in logs and "falls back to in-memory" in logs, logs
    assert redis_password not in logs and env["ADMIN_PASSWORD"] not in logs

    status, deep = get_json(docker_scope.host_port(api, API_PORT), "/health/deep")
    assert status == 200 and deep["status"] == "healthy", deep
    assert deep["components"]["database"]["status"] == "healthy" and deep["redis"].startswith("error"), deep

    # Runs as uid 1001 and writes config.json (0600), .service-port and data/, cache/ under /app.
    rc, out = docker_scope.exec(
        api,
        [
            "sh",
            "-c",
            "id -u; cat /app/.service-port; echo; stat -c '%n %u %a' /app/config.json; "
            "stat -c '%n %u' /app/data/challenge_results /app/cache/tls /app/logs/api.log",
        ],
    )
    lines = out.splitlines()
    assert rc == 0 and lines[0] == str(tags.API_UID) and lines[1] == str(API_PORT), out
    assert f"/app/config.json {tags.API_UID} 600" in out, out
    for path in ("/app/data/challenge_results", "/app/cache/tls", "/app/logs/api.log"):
        assert f"{path} {tags.API_UID}" in out, out

    # Migrations ran at start; the admin came from ADMIN_USERNAME/ADMIN_PASSWORD,
    # stored hashed, once.
    assert psql_exec(docker_scope, pg, "SELECT version FROM schema_migrations") == "standin-v1"
    row = psql_exec(docker_scope, pg, "SELECT username || '|' || role_id || '|' || length(password_hash) FROM users")
    assert row == "admin|1|128", row
    assert env["ADMIN_PASSWORD"] not in psql_exec(docker_scope, pg, "SELECT password_hash || salt FROM users")
    docker_scope.remove(api)
    again = start_standin(
        docker_scope, net, env, as_docker_healthcheck(program_api_check, interval=1, start_period=0), "api-again"
    )
    wait_healthy(again, timeout=60)
    assert psql_exec(docker_scope, pg, "SELECT count(*) FROM users WHERE username = 'admin'") == "1"


def test_standin_moves_to_next_port_when_taken_and_program_check_fails(
    docker_scope: DockerScope, program_api_check: dict[str, Any]
) -> None:
    """Something already on 8080 inside the container: the API takes 8081, and the 8080 probe fails."""
    net = docker_scope.network()
    pg_password = secrets.token_urlsafe(18)
    start_postgres(docker_scope, net, docker_scope.volume("pgdata"), pg_password)
    occupy_then_start = (
        f"python3 -m http.server {API_PORT} --bind 127.0.0.1 --directory /tmp >/dev/null 2>&1 & "
        f"until wget -q -O /dev/null http://127.0.0.1:{API_PORT}/; do sleep 0.1; done; exec /app/catalogizer-api"
    )
    api = start_standin(
        docker_scope,
        net,
        api_env(pg_password, None),
        as_docker_healthcheck(program_api_check, interval=1, retries=3, start_period=0),
        "api",
        entrypoint=["sh", "-c", occupy_then_start],
    )
    logs = wait_log(api, "listening on")
    assert f"listening on 0.0.0.0:{API_PORT + 1}" in logs, logs
    rc, out = docker_scope.exec(api, ["cat", "/app/.service-port"])
    assert rc == 0 and out.strip() == str(API_PORT + 1), out
    rc, out = docker_scope.exec(api, ["wget", "-q", "-O", "-", f"http://localhost:{API_PORT + 1}/health"])
    assert rc == 0 and '"healthy"' in out, out
    wait_health_status(api, "unhealthy", timeout=60)


def test_read_only_root_filesystem_stops_the_first_start(docker_scope: DockerScope) -> None:
    """The real API writes /app/config.json on first start (config.go LoadConfig) and exits 1 if it cannot."""
    rc, out = docker_scope.run_once(
        tags.API_V1, [], environment=api_env("unused", None), read_only=True, tmpfs={"/tmp": ""}, timeout=30
    )
    assert rc == 1, out
    assert "cannot create default config.json" in out and "Read-only file system" in out, out


# --------------------------------------------------------------------------- /health/deep


def test_deep_health_is_degraded_when_slow_and_503_when_database_down(
    docker_scope: DockerScope, program_api_check: dict[str, Any]
) -> None:
    net = docker_scope.network()
    pg_password = secrets.token_urlsafe(18)
    pg = start_postgres(docker_scope, net, docker_scope.volume("pgdata"), pg_password)
    api = start_standin(
        docker_scope,
        net,
        api_env(pg_password, None),
        as_docker_healthcheck(program_api_check, interval=1, start_period=0),
        "api",
    )
    wait_healthy(api, timeout=60)
    port = docker_scope.host_port(api, API_PORT)
    status, deep = get_json(port, "/health/deep")
    assert status == 200 and deep["status"] == "healthy", deep

    # A frozen database answers too slowly for the 100 ms budget: 200 "degraded".
    pg.pause()
    try:
        status, deep = get_json(port, "/health/deep")
        assert status == 200 and deep["status"] == "degraded", deep
        # /health never touches the database, so the container stays healthy.
        status, shallow = get_json(port, "/health")
        assert status == 200 and shallow["status"] == "healthy"
    finally:
        pg.unpause()
    deadline = time.monotonic() + 15
    while (deep := get_json(port, "/health/deep")[1])["status"] != "healthy" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert deep["status"] == "healthy", deep

    # A database that is down fails the check in time: 503 "unhealthy".
    pg.stop(timeout=20)
    status, deep = get_json(port, "/health/deep")
    assert status == 503 and deep["status"] == "unhealthy", deep
    assert deep["components"]["database"]["status"] == "unhealthy", deep


# --------------------------------------------------------------------------- building from a checkout


def test_checkout_with_empty_submodules_does_not_build(docker_scope: DockerScope, tmp_path: Path) -> None:
    """What a clone without --recurse-submodules leaves (empty folders) fails the build, as with the real Dockerfile."""
    checkout = tmp_path / "checkout"
    shutil.copytree(tags.STANDIN_CHECKOUT, checkout, ignore=shutil.ignore_patterns("__pycache__"))
    for module in (checkout / "submodules").iterdir():
        shutil.rmtree(module)
        module.mkdir()
    tag = docker_scope.name("nosubmodules").lower() + ":test"
    # --force-rm: the failing step's container would otherwise stay behind (classic builder).
    argv = ["docker", "build", "-q", "--force-rm", "-t", tag, "-f", str(checkout / tags.STANDIN_DOCKERFILE)]
    try:
        proc = subprocess.run(
            [*argv, str(checkout)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
    assert proc.returncode != 0, proc.stdout
    assert "git submodule update --init --recursive" in proc.stdout + proc.stderr, proc.stderr
    # The unmodified stand-in checkout does build (tests/images/build.sh built it for this session).
    assert docker_scope.client.images.get(tags.API_V1).attrs["Config"]["User"] == "appuser"
