"""catalogizer:cluster: single by default; swarm needs its registry and data node, and refuses
what the swarm topology cannot carry, before any resource is declared."""

from __future__ import annotations

import pytest
from workspace import Workspace

from settings import ConfigError

SWARM = {"mode": "swarm", "registry": "10.0.0.5:5000", "dataNodeHost": "ssh://admin@data-1"}

BAD_CLUSTER = [
    ("dev", {"cluster": {"mode": "kubernetes"}}, ["catalogizer:cluster.mode", "'kubernetes'", "single, swarm"]),
    ("dev", {"cluster": {"mode": "swarm", "dataNodeHost": "ssh://a@b"}}, ["catalogizer:cluster.registry", "required"]),
    ("dev", {"cluster": {"mode": "swarm", "registry": "r:5000"}}, ["catalogizer:cluster.dataNodeHost", "required"]),
    ("dev", {"cluster": {**SWARM, "registry": "https://r:5000"}}, ["catalogizer:cluster.registry", "http://host:port"]),
    ("dev", {"cluster": {**SWARM, "registry": "r:5000/Team"}}, ["catalogizer:cluster.registry", "host[:port][/path]"]),
    ("dev", {"cluster": {**SWARM, "dataNodeHost": "data-1"}}, ["catalogizer:cluster.dataNodeHost", "ssh://user@host"]),
    ("dev", {"cluster": {**SWARM, "dataNodeHost": "tcp://d -H x"}}, ["catalogizer:cluster.dataNodeHost"]),
    ("dev", {"cluster": {**SWARM, "dataNodeHost": "tcp://10.0.0.7:2376"}}, ["dataNodeHost", "tcp:// is not accepted"]),
    # A password in the URL would be a plain provider input: refused, and not repeated in the message.
    ("dev", {"cluster": {**SWARM, "dataNodeHost": "ssh://admin:hunter2@data-1"}}, ["without credentials"]),
    ("dev", {"cluster": {**SWARM, "dataNodeHost": "ssh://admin@-oProxyCommand=x"}}, ["dataNodeHost"]),
    ("dev", {"cluster": {"registry": "r:5000"}}, ["catalogizer:cluster.registry", "only used with mode=swarm"]),
    (
        "dev",
        {"cluster": {"dataNodeHost": "ssh://a@b"}},
        ["catalogizer:cluster.dataNodeHost", "only used with mode=swarm"],
    ),
    ("dev", {"cluster": {**SWARM, "replicas": 2}}, ["catalogizer:cluster", "unknown key 'replicas'"]),
    ("dev", {"cluster": {"encryptedOverlay": False}}, ["catalogizer:cluster.encryptedOverlay", "mode=swarm"]),
    (
        "dev",
        {"cluster": {**SWARM, "encryptedOverlay": "no"}},
        ["catalogizer:cluster.encryptedOverlay", "true or false"],
    ),
    ("dev", {"cluster": SWARM, "postgres": {"hostPort": 5433}}, ["catalogizer:postgres.hostPort", "127.0.0.1"]),
    ("dev", {"cluster": SWARM, "redis": {"hostPort": 6380}}, ["catalogizer:redis.hostPort", "every interface"]),
    ("dev", {"cluster": SWARM, "monitoring": {"enabled": True}}, ["catalogizer:monitoring.enabled", "swarm"]),
    ("dev", {"cluster": SWARM, "maintenance": "true"}, ["catalogizer:maintenance", "cluster.mode=swarm"]),
    (
        "dev",
        {"cluster": SWARM, "tls": {"mode": "acme", "acmeEmail": "ops@example.com"}, "domain": "catalog.example.com"},
        ["catalogizer:tls.mode", "acme is not available with cluster.mode=swarm", "tls.mode=files"],
    ),
    # Production's scheduler is on by default: swarm mode says so instead of dropping it.
    (
        "prod",
        {"cluster": SWARM, "monitoring": {"enabled": False}},
        ["catalogizer:backup.scheduler", "cluster.mode=swarm", "cluster.mode=single"],
    ),
]


@pytest.mark.parametrize(("stack", "overrides", "fragments"), BAD_CLUSTER, ids=[str(o) for _, o, _ in BAD_CLUSTER])
def test_bad_cluster_settings_fail_before_any_resource(
    workspace: Workspace, stack: str, overrides: dict, fragments: list[str]
) -> None:
    failure = workspace.fails(stack, overrides)
    assert isinstance(failure.error, ConfigError), failure.error
    for fragment in fragments:
        assert fragment in str(failure.error)
    assert "hunter2" not in str(failure.error)
    assert failure.declared == []


def test_single_is_the_default_and_declares_no_swarm_resource(workspace: Workspace) -> None:
    dev = workspace.deploy("dev")
    assert dev.of_type("docker:index/container:Container")
    for token in ("service:Service", "secret:Secret", "serviceConfig:ServiceConfig", "registryImage:RegistryImage"):
        assert dev.of_type(f"docker:index/{token}") == [], token
    # An explicit `single` is the same stack.
    explicit = workspace.deploy("dev", {"cluster": {"mode": "single"}})
    assert sorted(r.urn for r in explicit.resources) == sorted(r.urn for r in dev.resources)


def test_swarm_accepts_an_off_host_repository_and_restic_snapshots(workspace: Workspace) -> None:
    # Refused until the swarm topology pushed dumps off-host; now the hooks carry it (test_swarm_offsite.py).
    for restore_from in (None, "restic:latest", "restic:0123abcd"):
        overrides = {"cluster": SWARM, "backup": {"repository": "/srv/restic-repo"}, "restoreFrom": restore_from}
        deployed = workspace.deploy("dev", overrides)
        env = deployed.named("pre-update-backup-pg-dump").inputs["environment"]
        assert env["RESTIC_REPOSITORY"] == "/srv/restic-repo", restore_from
        assert "lastDrill" in deployed.outputs
        if restore_from is not None:
            snapshot = restore_from.removeprefix("restic:")
            assert deployed.named("restore-pg-restore").inputs["environment"]["RESTORE_SNAPSHOT"] == snapshot


def test_swarm_refuses_the_scheduler_with_a_repository_too(workspace: Workspace) -> None:
    failure = workspace.fails(
        "dev", {"cluster": SWARM, "backup": {"repository": "/srv/restic-repo", "scheduler": True}}
    )
    assert isinstance(failure.error, ConfigError), failure.error
    for fragment in ("catalogizer:backup.scheduler", "cluster.mode=swarm", "off-host push and restore drill"):
        assert fragment in str(failure.error)
    assert failure.declared == []


def test_swarm_accepts_every_docker_host_form(workspace: Workspace) -> None:
    for host in ("ssh://admin@data-1", "ssh://admin@data-1:2222", "unix:///run/data.sock"):
        deployed = workspace.deploy("dev", {"cluster": {**SWARM, "dataNodeHost": host}})
        (backup,) = [r for r in deployed.of_type("command:local:Command") if r.name == "pre-update-backup-pg-dump"]
        assert backup.inputs["environment"]["DOCKER_HOST"] == host


def test_registry_scheme_decides_how_the_digest_is_read(workspace: Workspace) -> None:
    for registry, address in (
        ("10.0.0.5:5000", "10.0.0.5:5000"),
        ("http://10.0.0.5:5000/team", "http://10.0.0.5:5000"),
    ):
        deployed = workspace.deploy("dev", {"cluster": {**SWARM, "registry": registry}})
        (push,) = deployed.of_type("docker:index/registryImage:RegistryImage")
        assert push.inputs["authConfig"] == {"address": address}
        # The image reference never carries the scheme.
        assert push.inputs["name"].startswith(registry.removeprefix("http://") + "/catalogizer-dev-api:")


def test_overlays_are_encrypted_unless_switched_off(workspace: Workspace) -> None:
    for setting, options in ((None, {"encrypted": "true"}), (True, {"encrypted": "true"}), (False, None)):
        cluster = SWARM if setting is None else {**SWARM, "encryptedOverlay": setting}
        deployed = workspace.deploy("dev", {"cluster": cluster})
        for network in deployed.of_type("docker:index/network:Network"):
            assert network.inputs.get("options") == options, (setting, network.inputs)
