"""Issue 10 outcomes 2 and 6 on the real services: what the API's credentials can NOT do."""

from __future__ import annotations

import json
import secrets

import pytest
from docker.models.containers import Container
from docker_harness import DockerScope, healthcheck, http_request, wait_healthy
from images import tags
from services import (
    API_PORT,
    PG_COMMAND,
    PG_DATA_DIR,
    PG_DB,
    PG_PGDATA,
    PG_USER,
    SCRIPTS,
    api_env,
    get_json,
    run_hook,
    start_api,
    start_postgres,
    start_redis,
)

from components.postgres import INITDB_ARGS, PASSWORD_FILE, postgres_uid
from rendering.redis import CONF_PATH as REDIS_CONF_PATH


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
    _, conf = docker_scope.exec(container, ["cat", REDIS_CONF_PATH])
    assert password not in conf and "user default reset on #" in conf


# --------------------------------------------------------------------------- PostgreSQL

API_ROLE = "catalogizer_api"
MONITOR_ROLE = "catalogizer_monitor"
DB_ROLES = SCRIPTS / "db_roles.py"


def _psql(scope: DockerScope, pg: Container, user: str, password: str, sql: str, host: str = "") -> tuple[int, str]:
    argv = ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", PG_DB, "-c", sql]
    if host:
        argv[1:1] = ["-h", host]
    return scope.exec(pg, argv, environment={"PGPASSWORD": password})


def _hook_env(pg: Container, pg_password: str, api_password: str) -> dict[str, str]:
    return {
        "PG_CONTAINER": pg.name,
        "PGUSER": PG_USER,
        "PGDATABASE": PG_DB,
        "PGPASSWORD": pg_password,
        "API_DB_USER": API_ROLE,
        "API_DB_PASSWORD": api_password,
        "MONITOR_DB_USER": MONITOR_ROLE,
        "MONITOR_DB_PASSWORD": api_password[::-1],
    }


def _api_env(pg_password: str, user: str) -> dict[str, str]:
    env = api_env(pg_password, None)
    env["DATABASE_USER"] = user
    return env


def test_existing_database_is_migrated_to_a_least_privileged_api_role(docker_scope: DockerScope) -> None:
    net = docker_scope.network()
    pg_password, api_password = secrets.token_hex(16), secrets.token_hex(16)
    # A stack deployed today: initialised the old way (initdb's trust lines), and an API that
    # connected as the superuser and created its tables and data.
    volume = docker_scope.volume("pgdata")
    pg = start_postgres(docker_scope, net, volume, pg_password)
    _, hba = docker_scope.exec(pg, ["sh", "-c", 'grep -v "^#" "$PGDATA/pg_hba.conf"'])
    assert "trust" in hba, hba  # what the official image leaves (initdb's default)
    old_api = start_api(docker_scope, net, tags.API_V1, _api_env(pg_password, PG_USER), suffix="api-old")
    wait_healthy(old_api, timeout=90)
    port = docker_scope.host_port(old_api, API_PORT)
    for name in ("before-1", "before-2"):
        status, _, _ = http_request("POST", "/api/v1/items", port, body=json.dumps({"name": name}).encode())
        assert status == 201
    docker_scope.remove(old_api)
    rc, out = _psql(
        docker_scope, pg, PG_USER, pg_password, "CREATE TYPE mood AS ENUM ('ok'); CREATE VIEW v AS SELECT 1"
    )
    assert rc == 0, out

    # `pulumi up` with this version: the container is replaced on the same volume, then the hook runs.
    docker_scope.remove(pg)
    pg = _start_postgres_as_deployed(docker_scope, net, volume, pg_password, "postgres-now")

    for _ in range(2):  # idempotent: a second `pulumi up` changes nothing and still succeeds
        result = run_hook(DB_ROLES, _hook_env(pg, pg_password, api_password))
        assert result.returncode == 0, result.stderr
        assert pg_password not in result.stdout + result.stderr
        assert api_password not in result.stdout + result.stderr
    assert json.loads(result.stdout) == {"apiRole": API_ROLE, "trustLinesReplaced": 0}

    # No trust left; the loopback socket now wants a password.
    _, hba = docker_scope.exec(pg, ["sh", "-c", 'grep -v "^#" "$PGDATA/pg_hba.conf"'])
    assert "trust" not in hba and "scram-sha-256" in hba, hba
    rc, out = docker_scope.exec(
        pg, ["psql", "-X", "-h", "127.0.0.1", "-U", PG_USER, "-d", PG_DB, "-w", "-c", "SELECT 1"]
    )
    assert rc != 0 and "password" in out, out
    rc, out = docker_scope.exec(pg, ["psql", "-X", "-U", PG_USER, "-d", PG_DB, "-w", "-c", "SELECT 1"])
    assert rc != 0 and "password" in out, out

    # The data is all there, now owned by the API role.
    rc, out = _psql(
        docker_scope,
        pg,
        PG_USER,
        pg_password,
        "SELECT count(*), (SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class "
        "WHERE relnamespace = 'public'::regnamespace) FROM items",
    )
    assert rc == 0 and out.strip() == f"2|{API_ROLE}", out

    # What the API's role can no longer do.
    rc, out = _psql(docker_scope, pg, API_ROLE, api_password, "COPY (SELECT 1) TO PROGRAM 'id'", host="127.0.0.1")
    assert rc != 0 and "pg_execute_server_program" in out, out
    for statement in ("CREATE ROLE evil LOGIN", "CREATE ROLE evil SUPERUSER"):
        rc, out = _psql(docker_scope, pg, API_ROLE, api_password, statement, host="127.0.0.1")
        assert rc != 0 and ("permission denied" in out or "must be superuser" in out), out
    rc, out = _psql(
        docker_scope,
        pg,
        API_ROLE,
        api_password,
        "SELECT rolsuper, rolcreaterole, rolcreatedb, pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') "
        "FROM pg_roles WHERE rolname = current_user",
        host="127.0.0.1",
    )
    assert rc == 0 and out.strip() == "f|f|f|f", out

    # The exporter's role reads statistics, not the catalog.
    monitor = (docker_scope, pg, MONITOR_ROLE, api_password[::-1])
    rc, out = _psql(*monitor, "SELECT count(*) > 0 FROM pg_stat_database", host="127.0.0.1")
    assert rc == 0 and out.strip() == "t", out
    rc, out = _psql(*monitor, "SELECT count(*) FROM items", host="127.0.0.1")
    assert rc != 0 and "permission denied" in out, out

    # The API stand-in still works as that role: reads the old rows, writes new ones.
    api = start_api(docker_scope, net, tags.API_V1, _api_env(api_password, API_ROLE), suffix="api-new")
    wait_healthy(api, timeout=90)
    port = docker_scope.host_port(api, API_PORT)
    status, _, _ = http_request("POST", "/api/v1/items", port, body=json.dumps({"name": "after"}).encode())
    assert status == 201
    status, body = get_json(port, "/api/v1/items")
    assert status == 200 and {i["name"] for i in body["items"]} >= {"before-1", "before-2", "after"}, body
    assert get_json(port, "/health/deep")[0] == 200


def _start_postgres_as_deployed(scope: DockerScope, net, volume, password: str, suffix: str) -> Container:
    """PostgreSQL as components/postgres.py declares it now: password file, uid:0, no trust."""
    pg = scope.container(
        tags.POSTGRES,
        suffix,
        network=net,
        aliases=["postgres"],
        environment={
            "POSTGRES_USER": PG_USER,
            "POSTGRES_PASSWORD_FILE": PASSWORD_FILE,
            "POSTGRES_DB": PG_DB,
            "PGDATA": PG_PGDATA,
            "POSTGRES_INITDB_ARGS": INITDB_ARGS,
        },
        # Root-owned 0640, as the Docker provider uploads it; readable through group 0.
        files={PASSWORD_FILE: (password, 0o640)},
        user=f"{postgres_uid(tags.POSTGRES)}:0",
        command=PG_COMMAND,
        healthcheck=healthcheck(["CMD", "pg_isready", "-h", "127.0.0.1", "-U", PG_USER, "-d", PG_DB]),
        volumes={volume.name: {"bind": PG_DATA_DIR, "mode": "rw"}},
    )
    wait_healthy(pg, timeout=90)
    return pg


def test_new_database_never_has_trust_and_takes_the_password_from_a_file(docker_scope: DockerScope) -> None:
    password = secrets.token_hex(16)
    pg = _start_postgres_as_deployed(
        docker_scope, docker_scope.network(), docker_scope.volume("pgdata-new"), password, "postgres-new"
    )
    _, hba = docker_scope.exec(pg, ["sh", "-c", 'grep -v "^#" "$PGDATA/pg_hba.conf"'])
    assert "trust" not in hba and "scram-sha-256" in hba, hba
    assert password not in json.dumps(pg.attrs["Config"]["Env"])
    rc, out = _psql(docker_scope, pg, PG_USER, password, "SELECT 1")
    assert rc == 0 and out.strip() == "1", out
    rc, out = docker_scope.exec(pg, ["psql", "-X", "-U", PG_USER, "-d", PG_DB, "-w", "-c", "SELECT 1"])
    assert rc != 0 and "password" in out, out
