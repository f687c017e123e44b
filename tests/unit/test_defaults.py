"""Defaults and exact values that are the feature, as literals.

A default that changes silently changes every stack that relies on it: each one here
takes a deliberate change to its test.
"""

from __future__ import annotations

import pytest
from program import Deployment, ProgramFailed
from workspace import Workspace

from settings.model import MIN_JWT_SECRET_CHARS, MIN_SECRET_CHARS


@pytest.fixture(scope="module")
def bare_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("defaults"))


@pytest.fixture(scope="module")
def bare(bare_workspace: Workspace) -> Deployment:
    """The dev stack with no backup, health or preflight settings: every default applies."""
    return bare_workspace.deploy("dev", {"backup": None, "health": None, "preflight": None})


@pytest.fixture(scope="module")
def prod(bare_workspace: Workspace) -> Deployment:
    """One production deployment for the module (the tests only read it)."""
    return bare_workspace.deploy("prod")


def test_backup_defaults(bare: Deployment, bare_workspace: Workspace) -> None:
    env = bare.named("backup-pg-dump").inputs["environment"]
    assert env["BACKUP_KEEP"] == "10"
    assert env["BACKUP_DIR"] == str(bare_workspace.project / "backups")
    assert not bare.containers("backup-scheduler")  # development: off unless asked


def test_health_defaults(bare: Deployment) -> None:
    env = bare.named("health-verify").inputs["environment"]
    assert (env["HEALTH_TIMEOUT"], env["HEALTH_INTERVAL"], env["HEALTH_CONNECT_ADDRESS"]) == ("120", "2", "127.0.0.1")


def test_preflight_default_floor(bare: Deployment) -> None:
    assert bare.named("preflight-checks").inputs["environment"]["PREFLIGHT_MIN_FREE_GB"] == "10"


def test_health_settings_reach_the_hook(workspace: Workspace) -> None:
    deployment = workspace.deploy(
        "dev", {"health": {"timeoutSeconds": 300, "intervalSeconds": 7, "probeAddress": "10.0.0.5"}}
    )
    env = deployment.named("health-verify").inputs["environment"]
    assert (env["HEALTH_TIMEOUT"], env["HEALTH_INTERVAL"], env["HEALTH_CONNECT_ADDRESS"]) == ("300", "7", "10.0.0.5")


def test_the_scheduler_is_on_by_default_only_in_production(prod: Deployment, bare_workspace: Workspace) -> None:
    assert not bare_workspace.deploy("staging").containers("backup-scheduler")
    # Pulumi.prod.yaml sets neither backup.scheduler nor backup.schedule: both defaults apply.
    (scheduler,) = prod.containers("backup-scheduler")
    assert prod.env(scheduler)["BACKUP_SCHEDULE"] == "0 2 * * *"


def test_secret_floors() -> None:
    assert (MIN_SECRET_CHARS, MIN_JWT_SECRET_CHARS) == (12, 32)


@pytest.mark.parametrize(("name", "length"), [("postgresPassword", 11), ("redisPassword", 11), ("jwtSecret", 31)])
def test_a_secret_below_its_floor_is_refused(workspace: Workspace, name: str, length: int) -> None:
    with pytest.raises(ProgramFailed) as caught:
        workspace.deploy("dev", secrets={name: ("Sx9" * 20)[:length]})
    floor = 32 if name == "jwtSecret" else 12
    assert str(caught.value) == (
        f"catalogizer:{name}: is {length} characters; at least {floor} are required. "
        f"Set a longer one with `pulumi config set --secret catalogizer:{name} <value>`, "
        "or remove it to have one generated."
    )


def test_secrets_at_their_floor_are_accepted(workspace: Workspace) -> None:
    supplied = {"postgresPassword": "Sx9" * 4, "adminPassword": "Sx9" * 4, "jwtSecret": ("Sx9" * 11)[:32]}
    deployment = workspace.deploy("dev", secrets=supplied)
    generated = {r.name for r in deployment.of_type("random:index/randomPassword:RandomPassword")}
    assert generated == {
        "secrets-redisPassword", "secrets-grafanaPassword",
        "secrets-postgresApiPassword", "secrets-postgresMonitorPassword",
    }  # fmt: skip


def test_generated_secrets_have_fixed_lengths_and_no_specials(dev: Deployment) -> None:
    generated = {r.name: r.inputs for r in dev.of_type("random:index/randomPassword:RandomPassword")}
    lengths = {name.removeprefix("secrets-"): inputs["length"] for name, inputs in generated.items()}
    assert lengths == {
        "postgresPassword": 32,
        "postgresApiPassword": 32,
        "postgresMonitorPassword": 32,
        "redisPassword": 32,
        "jwtSecret": 64,
        "adminPassword": 24,
        "grafanaPassword": 24,
    }
    for inputs in generated.values():
        assert (inputs["special"], inputs["minUpper"], inputs["minLower"], inputs["minNumeric"]) == (False, 2, 2, 2)


@pytest.fixture(scope="module")
def two_replicas(bare_workspace: Workspace) -> Deployment:
    return bare_workspace.deploy("dev", {"api": {"replicas": 2}})


def test_backup_runs_exactly_when_the_api_rolls_out(two_replicas: Deployment, bare_workspace: Workspace) -> None:
    deployment = two_replicas
    backup = deployment.named("backup-pg-dump").inputs["triggers"]
    health = deployment.named("health-verify").inputs["triggers"]
    (rollout,) = backup
    assert len(rollout) == 64 and health[0] == rollout
    # A change that replaces no API container takes no new dump.
    unrelated = bare_workspace.deploy(
        "dev", {"api": {"replicas": 2}, "backup": {"keep": 6}, "redis": {"memoryMb": 256}}
    )
    assert unrelated.named("backup-pg-dump").inputs["triggers"] == backup


def test_health_reruns_for_any_replaced_container(two_replicas: Deployment) -> None:
    deployment = two_replicas
    triggers = deployment.named("health-verify").inputs["triggers"]
    assert {c.name for c in deployment.containers("api")} == {"catalogizer-dev-api-0", "catalogizer-dev-api-1"}
    # The mock provider gives each resource the ID "<name>-id"; replicas in order, then nginx.
    assert triggers[1:] == ["catalogizer-dev-api-0-id", "catalogizer-dev-api-1-id", "proxy-container-id"]


def test_container_limits_and_aliases(prod: Deployment) -> None:
    postgres, redis = prod.container("postgres"), prod.container("redis")
    prometheus, grafana = prod.container("prometheus"), prod.container("grafana")
    assert postgres.inputs["shmSize"] == 256
    assert (prometheus.inputs["memory"], grafana.inputs["memory"]) == (512, 512)
    assert prometheus.inputs["networksAdvanced"] == [{"name": "catalogizer-back", "aliases": ["prometheus"]}]
    assert grafana.inputs["networksAdvanced"] == [{"name": "catalogizer-back"}]
    assert redis.inputs["networksAdvanced"] == [{"name": "catalogizer-back", "aliases": ["redis"]}]
    assert prod.container("backup-scheduler").inputs["memory"] == 256
    assert prod.container("nginx").inputs["memory"] == 256


def test_grafana_sign_up_is_off(prod: Deployment) -> None:
    env = prod.env(prod.container("grafana"))
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SECURITY_ADMIN_USER"] == "admin"
    assert sorted(env) == ["GF_SECURITY_ADMIN_PASSWORD__FILE", "GF_SECURITY_ADMIN_USER", "GF_USERS_ALLOW_SIGN_UP"]


def test_monitoring_default_images(prod: Deployment) -> None:
    images = {r.name: r.inputs["name"] for r in prod.of_type("docker:index/remoteImage:RemoteImage")}
    assert images["monitoring-prometheus-image"] == "prom/prometheus:v2.53.2"
    assert images["monitoring-grafana-image"] == "grafana/grafana:11.2.0"
