"""The swarm health hook runs again whenever a service's spec changes, not only with a rollout: a new
nginx.conf, certificate or key (Swarm configs and a secret the edge service mounts), a new nginx image,
a new redis.conf. On one host a replaced container (new ID) does that (components/health.py); in swarm
mode the services are updated in place, so their declared spec is the trigger
(components/swarm/task_defaults.declare_service). Unchanged settings trigger nothing."""

from __future__ import annotations

from typing import Any

import pytest
from certs import write_self_signed
from program import Deployment
from workspace import Workspace

SERVICE = "docker:index/service:Service"
SWARM = {"mode": "swarm", "registry": "10.0.0.5:5000", "dataNodeHost": "ssh://admin@data-1"}


def triggers(deployment: Deployment) -> list[str]:
    return deployment.named("health-verify").inputs["triggers"]


def rollout(deployment: Deployment) -> list[str]:
    """What the hooks that follow the API are triggered by (the pre-update backup's)."""
    return deployment.named("pre-update-backup-pg-dump").inputs["triggers"]


def nginx_mounts(deployment: Deployment) -> dict[str, str]:
    """The Swarm config or secret ID nginx's task mounts at each path."""
    (nginx,) = [r for r in deployment.of_type(SERVICE) if r.inputs["name"] == "catalogizer-dev-nginx"]
    spec = nginx.inputs["taskSpec"]["containerSpec"]
    mounted = {c["fileName"]: c["configId"] for c in spec["configs"]}
    return mounted | {s["fileName"]: s["secretId"] for s in spec["secrets"]}


def changed(before: Deployment, after: Deployment) -> list[int]:
    """Which of the health hook's triggers differ: 0 the rollout, then postgres, redis, api, nginx."""
    return [i for i, (a, b) in enumerate(zip(triggers(before), triggers(after), strict=True)) if a != b]


def deploy(workspace: Workspace, overrides: dict[str, Any]) -> Deployment:
    return workspace.deploy("dev", {"cluster": SWARM, **overrides})


def test_one_trigger_per_service_besides_the_rollout(workspace: Workspace) -> None:
    deployment = deploy(workspace, {})
    found = triggers(deployment)
    assert len(found) == 5 and found[0] == rollout(deployment)[0]
    assert all(len(t) == 64 and int(t, 16) >= 0 for t in found), found
    assert len(set(found)) == 5
    # The same settings again: nothing to verify again.
    assert triggers(deploy(workspace, {})) == found


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"tls": {"hstsIncludeSubdomains": False}}, id="nginx.conf"),
        pytest.param({"proxy": {"image": "nginx:1.26-alpine"}}, id="nginx image"),
    ],
)
def test_an_edge_change_without_a_rollout_is_verified_again(workspace: Workspace, change: dict[str, Any]) -> None:
    before, after = deploy(workspace, {}), deploy(workspace, change)
    assert rollout(after) == rollout(before)
    assert changed(before, after) == [4]  # the edge service's revision only


def test_a_new_certificate_and_key_are_verified_again(workspace: Workspace) -> None:
    files = {"mode": "files", "certFile": "ssl/cert.pem", "keyFile": "ssl/key.pem"}
    before = deploy(workspace, {"tls": files})
    # The operator puts a renewed pair in place (another key, as a renewal may bring).
    write_self_signed(workspace.project / "ssl", "localhost", ("localhost",), valid_days=90)
    after = deploy(workspace, {"tls": files})
    assert rollout(after) == rollout(before)
    # The certificate is a new config and the key a new secret: the service mounts new IDs.
    for path in ("/etc/nginx/live/current/tls/cert.pem", "/etc/nginx/live/current/tls/key.pem"):
        assert nginx_mounts(after)[path] != nginx_mounts(before)[path], path
    assert changed(before, after) == [4]


def test_a_new_redis_conf_is_verified_again(workspace: Workspace) -> None:
    before, after = deploy(workspace, {}), deploy(workspace, {"redis": {"memoryMb": 256}})
    assert rollout(after) == rollout(before)
    assert changed(before, after) == [2]  # redis's revision only
