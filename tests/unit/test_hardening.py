"""Issue 10 outcome 3: CIS Docker Benchmark section 5 controls on every container."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from program import Deployment
from workspace import Workspace

from components.container_defaults import HARDENING, TMPFS_OPTIONS

CONTAINER = "docker:index/container:Container"
ROLE_LABEL = "catalogizer.role"


def _role(container) -> str:
    return next(label["value"] for label in container.inputs["labels"] if label["label"] == ROLE_LABEL)


def test_every_container_is_hardened(prod: Deployment, workspace: Workspace) -> None:
    # Production with tls.mode=acme adds the ACME sidecar (issue 13).
    acme = workspace.deploy(
        "prod", {"tls": {"mode": "acme", "acmeEmail": "ops@example.com", "certFile": None, "keyFile": None}}
    )
    containers = [*prod.services(), *acme.containers("acme")]
    assert {_role(c) for c in containers} == set(HARDENING), "a container without a hardening entry"
    for container in containers:
        role, spec = _role(container), HARDENING[_role(container)]
        inputs = container.inputs
        assert inputs["securityOpts"] == ["no-new-privileges:true"], role
        assert inputs["capabilities"]["drops"] == ["ALL"], role
        assert sorted(inputs["capabilities"].get("adds", [])) == sorted(spec.cap_add), role
        assert float(inputs["cpus"]) > 0, role
        assert inputs["ulimits"] == [{"name": "nproc", "soft": spec.nproc, "hard": spec.nproc}], role
        if spec.read_only:
            assert inputs["readOnly"] is True, role
            assert inputs["tmpfs"] == dict.fromkeys(spec.tmpfs, TMPFS_OPTIONS), role
        else:
            assert not inputs.get("readOnly"), role


def test_read_only_where_the_image_allows() -> None:
    # The API cannot (config.json beside its binary, docs/security.md); these can.
    assert {r for r, h in HARDENING.items() if h.read_only} >= {"nginx", "redis", "postgres", "backup-scheduler"}
    # Only nginx gets any capability back.
    assert {r for r, h in HARDENING.items() if h.cap_add} == {"nginx"}
    assert set(HARDENING["nginx"].cap_add) == {"CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE"}


def test_non_root_users(prod: Deployment, workspace: Workspace) -> None:
    assert prod.container("redis").inputs["user"] == "999:0"
    assert prod.container("postgres").inputs["user"] == "70:0"  # postgres:15-alpine
    scheduler = prod.container("backup-scheduler")
    owner = (
        os.stat(workspace.project / "backups" / "prod") if (workspace.project / "backups" / "prod").exists() else None
    )
    expected = f"{owner.st_uid}:{owner.st_gid}" if owner else f"{os.getuid()}:{os.getgid()}"
    assert scheduler.inputs["user"] == expected


def test_cpu_limits_from_config(workspace: Workspace) -> None:
    config = {"api": {"cpus": "1.5"}, "postgres": {"cpus": 1}, "redis": {"cpus": "0.25"}, "proxy": {"cpus": "0.3"}}
    deployment = workspace.deploy("dev", config)
    assert deployment.container("api").inputs["cpus"] == "1.5"
    assert deployment.container("postgres").inputs["cpus"] == "1"
    assert deployment.container("redis").inputs["cpus"] == "0.25"
    assert deployment.container("nginx").inputs["cpus"] == "0.3"


@pytest.mark.parametrize("value", ["0", "0.05", "lots", "1e3", "-1", "100000"])
def test_absurd_cpu_limits_refused(workspace: Workspace, value: str) -> None:
    failure = workspace.fails("dev", {"api": {"cpus": value}})
    assert "catalogizer:api.cpus" in str(failure.error) and failure.declared == []


def test_secret_files_are_private(prod: Deployment) -> None:
    redis = prod.container("redis-config")
    (conf,) = redis.inputs["uploads"]
    assert conf["permissions"] == "0640" and conf["file"] == "/etc/catalogizer-redis/redis.conf"
    # The TLS key reaches nginx through the proxy-config hook: a secret input, never a file of
    # the container, staged at 0600 in a 0700 folder of the volume nginx mounts read-only.
    hook = prod.named("proxy-config")
    assert hook.is_secret("environment.TLS_KEY_PEM")
    assert (
        'chmod 700 "$live/$next.new/tls"; chmod 600 "$live/$next.new/tls/key.pem"'
        in (Path(__file__).resolve().parents[2] / "scripts" / "proxy_config.py").read_text()
    )
    assert not prod.container("nginx").inputs.get("uploads")
