"""scripts/health_check.py against a real stack: nginx (TLS), stand-in API, PostgreSQL, Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_harness import DockerScope, wait_healthy
from images import tags
from services import SCRIPTS, MiniStack, api_env, run_hook, start_api, start_stack

HEALTH = SCRIPTS / "health_check.py"
TIMEOUT = 8


@pytest.fixture
def stack(docker_scope: DockerScope, tmp_path: Path) -> Iterator[MiniStack]:
    yield start_stack(docker_scope, tmp_path / "tls")


def health(stack: MiniStack, tmp_path: Path, **overrides: str) -> tuple[int, str, str, float]:
    env = {**stack.hook_env(tmp_path), "HEALTH_TIMEOUT": str(TIMEOUT), "HEALTH_INTERVAL": "1", **overrides}
    started = time.monotonic()
    result = run_hook(HEALTH, env, timeout=TIMEOUT + 30)
    elapsed = time.monotonic() - started
    for secret in (stack.pg_password, stack.redis_password):
        assert secret not in result.stdout + result.stderr
    return result.returncode, result.stdout, result.stderr, elapsed


def test_healthy_stack_passes(stack: MiniStack, tmp_path: Path) -> None:
    code, stdout, stderr, _ = health(stack, tmp_path)
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["status"] == "healthy"
    assert set(summary["checks"]) == {"nginx", f"api:{stack.api.name}", "postgres", "redis"}
    assert '"status": "healthy"' in summary["checks"]["nginx"]
    assert summary["checks"]["redis"] == "PONG"


def test_certificate_is_verified_not_ignored(stack: MiniStack, tmp_path: Path, docker_scope: DockerScope) -> None:
    from certs import write_self_signed

    stranger = write_self_signed(tmp_path / "stranger")
    code, _, stderr, _ = health(stack, tmp_path, HEALTH_CA_PEM=stranger.cert_pem)
    assert code == 1
    assert "- nginx: last answer: SSLCertVerificationError" in stderr


def test_api_answering_500_fails_within_timeout(docker_scope: DockerScope, tmp_path: Path) -> None:
    stack = start_stack(docker_scope, tmp_path / "tls", api_image=tags.API_BROKEN)
    code, stdout, stderr, elapsed = health(stack, tmp_path)
    assert code == 1 and stdout == ""
    assert elapsed < TIMEOUT + 5
    assert f"- api:{stack.api.name}: last answer:" in stderr
    assert "- nginx: last answer: HTTP 500" in stderr
    assert f"last log lines of {stack.api.name}:" in stderr
    assert "GET /health" in stderr  # the container's own log shows the failing requests


def test_nginx_down_fails_within_timeout(stack: MiniStack, tmp_path: Path) -> None:
    stack.nginx.stop(timeout=5)
    code, _, stderr, elapsed = health(stack, tmp_path)
    assert code == 1 and elapsed < TIMEOUT + 5
    assert "- nginx: last answer: ConnectionRefusedError" in stderr
    assert f"last log lines of {stack.nginx.name}:" in stderr
    assert "- postgres" not in stderr and "- redis" not in stderr


def test_redis_rejecting_the_password_fails_within_timeout(stack: MiniStack, tmp_path: Path) -> None:
    code, _, stderr, elapsed = health(stack, tmp_path, REDIS_PASSWORD="not-the-redis-password")
    assert code == 1 and elapsed < TIMEOUT + 5
    assert "- redis: last answer:" in stderr and "WRONGPASS" in stderr
    assert "not-the-redis-password" not in stderr


def test_health_waits_for_a_late_api(docker_scope: DockerScope, stack: MiniStack, tmp_path: Path) -> None:
    # A second replica that is still starting: the check polls until it answers.
    late = start_api(docker_scope, stack.network, tags.API_V1, api_env(stack.pg_password, stack.redis_password), "late")
    code, stdout, stderr, _ = health(stack, tmp_path, API_CONTAINERS=f"{stack.api.name},{late.name}")
    assert code == 0, stderr
    assert json.loads(stdout)["checks"][f"api:{late.name}"].startswith("HTTP 200")
    wait_healthy(late, timeout=30)
