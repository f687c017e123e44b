"""The rehearsal engine's Swarm resources (tests/rehearsal/providers_swarm.py) against the test
cluster: create with the converge wait, no-op, a failing update that Swarm rolls back (and the run
fails with the provider's message), a changed secret replaced create-before-delete, replicas updated
in place, destroy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest
from cluster import SwarmCluster, wait_until
from data_node import running_tasks
from rehearsal_engine import DeploymentFailed, Rehearsal, UpResult

PROGRAM = Path(__file__).resolve().parents[1] / "rehearsal" / "programs" / "swarm_service.py"
SERVE = json.dumps(["python3", "-m", "http.server", "8000"])
NEVER_HEALTHY = json.dumps(["sleep", "600"])


def _steps(result: UpResult) -> list[tuple[str, str]]:
    return sorted((e.action, e.name) for e in result.changes())


def test_service_secret_config_lifecycle(cluster: SwarmCluster, probe_image: str, tmp_path: Path) -> None:
    started = time.monotonic()
    client = docker.DockerClient(base_url=cluster.manager.host, timeout=300)
    name = f"{cluster.run_id}-sw"
    config = {
        "sw:name": name,
        "sw:image": probe_image,
        "sw:command": SERVE,
        "sw:replicas": "2",
        "sw:secret": "first-secret-value",
        "sw:config": "first config",
    }
    engine = Rehearsal(tmp_path / "state.json", client=client, program=PROGRAM)
    try:
        created = engine.up("sw", config)
        assert _steps(created) == [("create", "conf"), ("create", "net"), ("create", "secret"), ("create", "svc")]
        # The converge wait returned only with both replicas running (healthy), on two nodes (spread).
        tasks = running_tasks(client, name)
        assert len(tasks) == 2 and len({t["NodeID"] for t in tasks}) == 2
        spec = client.api.inspect_service(name)["Spec"]
        # QueryRegistry on create: the registry answered, so the image is pinned to its digest.
        assert spec["TaskTemplate"]["ContainerSpec"]["Image"].startswith(f"{probe_image}@sha256:")
        assert spec["UpdateConfig"]["Order"] == "start-first" and spec["UpdateConfig"]["FailureAction"] == "rollback"
        assert spec["EndpointSpec"]["Mode"] == "dnsrr"
        (mounted,) = spec["TaskTemplate"]["ContainerSpec"]["Secrets"]
        assert mounted["File"] == {"Name": "/run/secrets/value", "UID": "0", "GID": "0", "Mode": 0o400}
        node = next(n for n in cluster.nodes if n.node_id == tasks[0]["NodeID"])
        cid = tasks[0]["Status"]["ContainerStatus"]["ContainerID"]
        assert node.docker("exec", cid, "cat", "/run/secrets/value").stdout == "first-secret-value"
        assert node.docker("exec", cid, "cat", "/etc/sw.conf").stdout == "first config"

        assert _steps(engine.up("sw", config)) == []  # nothing changed: every step is `same`

        # A command that never gets healthy: Swarm rolls the update back by itself, and the provider's
        # converge wait turns that into the run's failure.
        before = time.monotonic()
        with pytest.raises(DeploymentFailed) as failed:
            engine.up("sw", {**config, "sw:command": NEVER_HEALTHY})
        assert any("service rollback completed" in f for f in failed.value.failures), failed.value.failures
        # The provider already reports "rollback completed" once, during Swarm's rollback_started, the
        # replicas run again (resourceDockerServiceUpdateRefreshFunc); Swarm's own state follows.
        wait_until(
            "Swarm's rollback_completed",
            lambda: client.api.inspect_service(name)["UpdateStatus"]["State"] == "rollback_completed",
            60,
        )
        back = client.api.inspect_service(name)
        assert back["Spec"]["TaskTemplate"]["ContainerSpec"]["Command"] == json.loads(SERVE)
        assert len(running_tasks(client, name)) == 2
        rollback_seconds = time.monotonic() - before

        # A new secret value: a new secret first, the service moved to it, the old one deleted last.
        old_secret = created.outputs["secret"]
        changed = engine.up("sw", {**config, "sw:secret": "second-secret-value"})
        assert _steps(changed) == [("create", "secret"), ("delete", "secret"), ("update", "svc")]
        order = [(e.action, e.name) for e in changed.changes()]
        assert order.index(("create", "secret")) < order.index(("update", "svc")) < order.index(("delete", "secret"))
        assert old_secret not in [s["Spec"]["Name"] for s in client.api.secrets()]

        # Replicas: an update in place (only the mode block's presence is ForceNew).
        scaled = engine.up("sw", {**config, "sw:secret": "second-secret-value", "sw:replicas": "3"})
        assert _steps(scaled) == [("update", "svc")]
        assert len(running_tasks(client, name)) == 3
    finally:
        destroyed = engine.destroy()
    assert sorted(destroyed.deleted) == ["conf", "net", "secret", "svc"]
    assert name not in [s["Spec"]["Name"] for s in client.api.services()]
    cluster.say(
        f"[swarm] rehearsal provider rules: {time.monotonic() - started:.1f}s, passed "
        f"(rolled-back update failed the run in {rollback_seconds:.1f}s)"
    )
