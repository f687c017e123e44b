"""Settings at their bounds, and the exact words of the errors an operator reads."""

from __future__ import annotations

import pytest
from workspace import Workspace

from settings import ConfigError


def test_values_at_the_bounds_are_accepted(workspace: Workspace) -> None:
    low = workspace.deploy(
        "dev",
        {
            "preflight": {"minFreeGb": 1},
            "backup": {"keep": 1},
            "health": {"timeoutSeconds": 5, "intervalSeconds": 1},
            "api": {"replicas": 1},
            "redis": {"hostPort": 1},
        },
    )
    high = workspace.deploy(
        "dev",
        {
            "preflight": {"minFreeGb": 100000},
            "backup": {"keep": 1000},
            "health": {"timeoutSeconds": 3600, "intervalSeconds": 60},
            "api": {"replicas": 16},
            "postgres": {"hostPort": 65535},
        },
    )
    for deployment, values in ((low, ("1", "1", "5", "1")), (high, ("100000", "1000", "3600", "60"))):
        floor = deployment.named("preflight-checks").inputs["environment"]["PREFLIGHT_MIN_FREE_GB"]
        keep = deployment.named("backup-pg-dump").inputs["environment"]["BACKUP_KEEP"]
        health = deployment.named("health-verify").inputs["environment"]
        assert (floor, keep, health["HEALTH_TIMEOUT"], health["HEALTH_INTERVAL"]) == values
    assert (len(low.containers("api")), len(high.containers("api"))) == (1, 16)
    assert low.container("redis").inputs["ports"][0]["external"] == 1
    assert high.container("postgres").inputs["ports"][0]["external"] == 65535


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"preflight": {"minFreeGb": 100001}},
            "catalogizer:preflight.minFreeGb: 100001 is outside 1-100000. "
            "Set it with `pulumi config set --path 'catalogizer:preflight.minFreeGb' <number>`.",
        ),
        ({"preflight": {"minFreeGb": 0}}, "catalogizer:preflight.minFreeGb: 0 is outside 1-100000."),
        ({"preflight": {"minFreeGb": -1}}, "catalogizer:preflight.minFreeGb: -1 is outside 1-100000."),
        ({"backup": {"keep": 1001}}, "catalogizer:backup.keep: 1001 is outside 1-1000."),
        ({"health": {"timeoutSeconds": 4}}, "catalogizer:health.timeoutSeconds: 4 is outside 5-3600."),
        ({"health": {"timeoutSeconds": 3601}}, "catalogizer:health.timeoutSeconds: 3601 is outside 5-3600."),
        ({"health": {"intervalSeconds": 0}}, "catalogizer:health.intervalSeconds: 0 is outside 1-60."),
        ({"health": {"intervalSeconds": 61}}, "catalogizer:health.intervalSeconds: 61 is outside 1-60."),
        ({"api": {"replicas": 17}}, "catalogizer:api.replicas"),
        ({"redis": {"hostPort": 0}}, "catalogizer:redis.hostPort: 0 is outside 1-65535."),
        ({"postgres": {"hostPort": 65536}}, "catalogizer:postgres.hostPort: 65536 is outside 1-65535."),
        ({"api": {"memoryMb": 1024 * 1024 + 1}}, "catalogizer:api.memoryMb: 1048577 is outside 1-1048576."),
        ({"monitoring": {"enabled": "yes"}}, "catalogizer:monitoring.enabled: expected true or false, got 'yes'."),
        ({"backup": {"dir": "  "}}, "catalogizer:backup.dir: expected a non-empty string, got '  '."),
        (
            {"tls": {"mode": "letsEncrypt"}},
            "catalogizer:tls.mode: unknown value 'letsEncrypt'. Use one of: selfSigned, files, acme, off.",
        ),
        (
            {"redis": {"hostPort": 8443}},
            "catalogizer:redis.hostPort: host port 8443 is already used by catalogizer:proxy.httpsPort; "
            "give each service its own port.",
        ),
        (
            {"domainn": "x"},
            "catalogizer:domainn: unknown key. Did you mean 'catalogizer:domain'? "
            "Remove it with `pulumi config rm catalogizer:domainn`.",
        ),
        ({"zzzzzz": "x"}, "catalogizer:zzzzzz: unknown key. Remove it with `pulumi config rm catalogizer:zzzzzz`."),
    ],
)
def test_refused_with_these_words(workspace: Workspace, overrides: dict[str, object], message: str) -> None:
    failure = workspace.fails("dev", overrides)
    assert isinstance(failure.error, ConfigError)
    assert str(failure.error).startswith(message)


def test_monitoring_ports_clash_only_when_monitoring_is_on(workspace: Workspace) -> None:
    # Off: its ports are not claimed, so another service may use them.
    workspace.deploy("dev", {"redis": {"hostPort": 9090}})
    failure = workspace.fails("dev", {"redis": {"hostPort": 9090}, "monitoring": {"enabled": True}})
    assert str(failure.error) == (
        "catalogizer:monitoring.prometheusPort: host port 9090 is already used by catalogizer:redis.hostPort; "
        "give each service its own port."
    )


def test_settings_reach_the_containers(workspace: Workspace) -> None:
    deployment = workspace.deploy(
        "dev",
        {
            "proxy": {"image": "nginx:1.27.3-alpine"},
            "postgres": {"image": "postgres:15.8-alpine", "database": "catalog", "user": "cat"},
            "redis": {"image": "redis:7.4-alpine"},
            "monitoring": {
                "enabled": True,
                "prometheusImage": "prom/prometheus:v3",
                "grafanaImage": "grafana/grafana:12",
                "prometheusPort": 19090,
                "grafanaPort": 13000,
            },
        },
    )
    images = {
        r.name: r.inputs["name"]
        for r in deployment.of_type("docker:index/remoteImage:RemoteImage")
        if not r.name.startswith(("exporters-", "alertmanager-"))
    }
    assert images == {
        "proxy-image": "nginx:1.27.3-alpine",
        "postgres-image": "postgres:15.8-alpine",
        "redis-image": "redis:7.4-alpine",
        "monitoring-prometheus-image": "prom/prometheus:v3",
        "monitoring-grafana-image": "grafana/grafana:12",
    }
    env = deployment.env(deployment.container("postgres"))
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"]) == ("cat", "catalog")
    assert deployment.container("prometheus").inputs["ports"][0]["external"] == 19090
    assert deployment.container("grafana").inputs["ports"][0]["external"] == 13000


def test_moving_the_key_file_reruns_preflight(workspace: Workspace) -> None:
    # Same key, another path: a settings change like any other, so the host is checked again.
    moved = workspace.project / "ssl" / "moved-key.pem"
    moved.write_bytes(workspace.certs.key_file.read_bytes())
    before = workspace.deploy("prod").named("preflight-checks").inputs["triggers"][0]
    after = workspace.deploy("prod", {"tls": {"keyFile": str(moved)}}).named("preflight-checks").inputs["triggers"][0]
    assert before != after
