"""What the two topologies share is declared once, beside the role's single-host component: each
role's health check (components/api.py, postgres.py, redis.py, proxy.py), PostgreSQL's and Redis's
environment and server command, and the health hooks' probe environment (components/health.py).
Here: both render the same values, and those values are the roles' probes."""

from __future__ import annotations

import pytest
from program import Deployment, Registered
from workspace import Workspace

from components import api, proxy, redis
from components.container_defaults import HealthProbe

SERVICE = "docker:index/service:Service"
SWARM = {"mode": "swarm", "registry": "10.0.0.5:5000", "dataNodeHost": "ssh://admin@data-1"}


@pytest.fixture
def both(workspace: Workspace) -> tuple[Deployment, Deployment]:
    return workspace.deploy("dev"), workspace.deploy("dev", {"cluster": SWARM})


def service_spec(deployment: Deployment, role: str) -> dict:
    (only,) = [
        r for r in deployment.of_type(SERVICE) if {"label": "catalogizer.role", "value": role} in r.inputs["labels"]
    ]
    return only.inputs["taskSpec"]["containerSpec"]


def rendered(probe: HealthProbe) -> dict[str, object]:
    """A probe as both providers' inputs read back under the mock runtime."""
    return {
        "tests": list(probe.test),
        "interval": f"{probe.interval}s",
        "timeout": f"{probe.timeout}s",
        "retries": float(probe.retries),
        "startPeriod": f"{probe.start_period}s",
    }


def test_each_role_has_one_health_check_in_both_topologies(both: tuple[Deployment, Deployment]) -> None:
    single, swarm = both
    probes = {"api": api.HEALTH_PROBE, "nginx": proxy.HEALTH_PROBE, "redis": redis.HEALTH_PROBE}
    containers: dict[str, Registered] = {role: single.containers(role)[0] for role in ("api", "nginx", "redis")}
    containers["postgres"] = single.container("postgres")
    for role, container in containers.items():
        assert container.inputs["healthcheck"] == service_spec(swarm, role)["healthcheck"], role
        if role in probes:
            assert container.inputs["healthcheck"] == rendered(probes[role]), role
    # The values the roles have always had (existing stacks see no diff).
    assert rendered(api.HEALTH_PROBE) == {
        "tests": ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"],
        "interval": "2s",
        "timeout": "5s",
        "retries": 30.0,
        "startPeriod": "20s",
    }
    assert containers["postgres"].inputs["healthcheck"] == {
        "tests": ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "catalogizer", "-d", "catalogizer"],
        "interval": "5s",
        "timeout": "5s",
        "retries": 12.0,
        "startPeriod": "30s",
    }
    assert rendered(redis.HEALTH_PROBE)["tests"] == ["CMD-SHELL", "redis-cli ping | grep -q PONG"]
    assert rendered(proxy.HEALTH_PROBE)["tests"] == [
        "CMD",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://127.0.0.1:80/nginx-health",
    ]
    # The API's time to finish its requests, too.
    assert containers["api"].inputs["stopTimeout"] == 30.0
    assert service_spec(swarm, "api")["stopGracePeriod"] == "30s"


def test_postgres_and_redis_get_the_same_environment_and_command(both: tuple[Deployment, Deployment]) -> None:
    single, swarm = both
    pg, pg_task = single.container("postgres"), service_spec(swarm, "postgres")
    environment = single.env(pg)
    # Only where each topology mounts the superuser's password file differs.
    assert environment.pop("POSTGRES_PASSWORD_FILE") == "/etc/catalogizer-postgres/superuser-password"
    assert dict(pg_task["env"]).pop("POSTGRES_PASSWORD_FILE") == "/run/secrets/postgres-superuser-password"
    assert environment == {k: v for k, v in pg_task["env"].items() if k != "POSTGRES_PASSWORD_FILE"}
    assert environment == {
        "POSTGRES_USER": "catalogizer",
        "POSTGRES_DB": "catalogizer",
        "PGDATA": "/var/lib/postgresql/data/pgdata",
        "POSTGRES_INITDB_ARGS": "--auth-local=scram-sha-256 --auth-host=scram-sha-256",
    }
    assert list(single.env(pg)) == [
        "POSTGRES_USER",
        "POSTGRES_PASSWORD_FILE",
        "POSTGRES_DB",
        "PGDATA",
        "POSTGRES_INITDB_ARGS",
    ]
    assert pg.inputs["user"] == pg_task["user"] == "70:0"
    assert pg.inputs["command"] == pg_task["args"]
    cache, cache_task = single.containers("redis")[0], service_spec(swarm, "redis")
    assert single.env(cache) == cache_task["env"] == {"REDISCLI_AUTH": swarm.outputs["redisPassword"]}
    assert single.env(cache)["REDISCLI_AUTH"] == single.outputs["redisPassword"]
    assert cache.is_secret("envs")
    assert cache.inputs["command"] == cache_task["args"] == list(redis.SERVER_COMMAND)


def test_both_health_hooks_reach_nginx_the_same_way(both: tuple[Deployment, Deployment]) -> None:
    single, swarm = both
    shared = ("HEALTH_URL", "HEALTH_CONNECT_ADDRESS", "HEALTH_TIMEOUT", "HEALTH_INTERVAL", "HEALTH_CA_PEM")
    one_host, cluster = ({k: d.named("health-verify").inputs["environment"][k] for k in shared} for d in both)
    assert one_host == cluster
    assert one_host["HEALTH_URL"] == "https://localhost:8443/health"
    assert one_host["HEALTH_CA_PEM"] == single.outputs["tlsCertificate"] == swarm.outputs["tlsCertificate"]
