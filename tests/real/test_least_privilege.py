"""Issue 10 outcomes 2 and 6 on the real services: what the API's credentials can NOT do."""

from __future__ import annotations

import secrets

import pytest
from docker.models.containers import Container
from docker_harness import DockerScope
from services import start_redis


def _as_api(scope: DockerScope, redis: Container, password: str, *command: str) -> str:
    # The API authenticates with its password only (AUTH <password>, i.e. the default user).
    _, out = scope.exec(redis, ["redis-cli", "--no-auth-warning", *command], environment={"REDISCLI_AUTH": password})
    return out.strip()


@pytest.fixture
def redis(docker_scope: DockerScope) -> tuple[Container, str]:
    password = secrets.token_hex(16)
    return start_redis(docker_scope, docker_scope.network(), password), password


DENIED = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "GET", "dir"),
    ("CONFIG", "SET", "requirepass", "x"),
    ("REPLICAOF", "192.0.2.1", "6379"),
    ("ACL", "SETUSER", "evil", "on", ">x", "+@all"),
    ("SHUTDOWN", "NOSAVE"),
    ("MODULE", "LIST"),
    ("KEYS", "*"),
]


def test_api_user_gets_noperm_for_dangerous_and_admin_commands(
    docker_scope: DockerScope, redis: tuple[Container, str]
) -> None:
    container, password = redis
    assert _as_api(docker_scope, container, password, "SET", "keep", "me") == "OK"
    for command in DENIED:
        assert "NOPERM" in _as_api(docker_scope, container, password, *command), command
    # Nothing happened: the data and the server are still there.
    assert _as_api(docker_scope, container, password, "GET", "keep") == "me"


def test_api_user_can_do_what_a_cache_and_rate_limiter_need(
    docker_scope: DockerScope, redis: tuple[Container, str]
) -> None:
    container, password = redis
    for command, expected in [
        (("PING",), "PONG"),
        (("INCR", "rl:1.2.3.4"), "1"),
        (("EXPIRE", "rl:1.2.3.4", "60"), "1"),
        (("EVAL", "return redis.call('INCR', KEYS[1])", "1", "rl:x"), "1"),
        (("PUBLISH", "events", "x"), "0"),
        (("DEL", "rl:1.2.3.4"), "1"),
    ]:
        assert _as_api(docker_scope, container, password, *command) == expected, command


def test_no_one_gets_in_without_the_password(docker_scope: DockerScope, redis: tuple[Container, str]) -> None:
    container, password = redis
    _, out = docker_scope.exec(container, ["sh", "-c", "env -u REDISCLI_AUTH redis-cli ping"])
    assert "NOAUTH" in out
    assert "WRONGPASS" in _as_api(docker_scope, container, password + "x", "PING")
    # The uploaded config holds only the password's SHA-256, never the password.
    _, conf = docker_scope.exec(container, ["cat", "/etc/catalogizer-redis.conf"])
    assert password not in conf and "user default reset on #" in conf
