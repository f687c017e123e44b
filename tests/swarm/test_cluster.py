"""The test cluster itself, and what the swarm topology relies on, checked on real engines:
the preflight hook against a labelled swarm (and each way it must refuse), overlay traffic
between tasks on different nodes, and what an encrypted overlay does on this kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster import DATA_LABEL, EDGE_LABEL, SwarmCluster, kernel_has_ipsec_esp, wait_until

PREFLIGHT = Path(__file__).resolve().parents[2] / "scripts" / "swarm_preflight.py"


def preflight(cluster: SwarmCluster, **overrides: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DOCKER_HOST": cluster.manager.host,
        "DATA_NODE_HOST": cluster.data.host,
        "REGISTRY": cluster.registry,
        # The test registry is plain HTTP (catalogizer:cluster.registry http://...).
        "REGISTRY_SCHEME": "http",
        "EDGE_LABEL": EDGE_LABEL,
        "DATA_LABEL": DATA_LABEL,
        "BACKUP_DIR": str(cluster.workdir / "backups"),
        "PREFLIGHT_MIN_FREE_GB": "1",
        **overrides,
    }
    return subprocess.run(
        [sys.executable, str(PREFLIGHT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_three_engines_with_their_own_addresses_form_one_labelled_swarm(cluster: SwarmCluster) -> None:
    nodes = json.loads(cluster.manager.docker("node", "inspect", *[n.node_id for n in cluster.nodes]).stdout)
    by_id = {n["ID"]: n for n in nodes}
    assert len(by_id) == 3
    for node in cluster.nodes:
        inspected = by_id[node.node_id]
        assert inspected["Status"]["State"] == "ready"
        assert inspected["Status"]["Addr"] == node.address
        assert inspected["Spec"].get("Labels", {}) == node.labels
    assert by_id[cluster.manager.node_id]["ManagerStatus"]["Leader"] is True
    assert "ManagerStatus" not in by_id[cluster.data.node_id] and "ManagerStatus" not in by_id[cluster.worker.node_id]


def test_preflight_accepts_the_labelled_cluster(cluster: SwarmCluster) -> None:
    result = preflight(cluster)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["manager"] == cluster.manager.node_id
    assert summary["dataNode"] == cluster.data.node_id
    assert summary["edgeNodes"] == 1
    assert summary["registry"] == f"http://{cluster.registry} (registry/2.0)"
    # The data node's data root (its engine is local here, so measured directly) and the backup folder.
    assert set(summary["freeGb"]) == {"dockerRoot", "backupDir"} and min(summary["freeGb"].values()) >= 1


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("worker-as-provider-host", ["is not a Swarm manager", "point docker:host at a manager"]),
        ("data-host-is-the-worker", ["catalogizer:cluster.dataNodeHost", "but the node labelled data is"]),
        ("registry-not-answering", ["catalogizer:cluster.registry", "does not answer as a registry over http"]),
        ("registry-over-https", ["does not answer as a registry over https", "write it as http://host:port"]),
        ("data-node-disk-below-floor", ["Docker's data root", "on the data node (unix://", "below the 99999 GB floor"]),
        ("no-edge-label", ["no ready node is labelled catalogizer.edge=true", "--label-add"]),
        ("two-data-labels", ["2 nodes are labelled catalogizer.data=true", "exactly one"]),
    ],
)
def test_preflight_refuses_a_cluster_that_does_not_match(
    cluster: SwarmCluster, case: str, fragments: list[str]
) -> None:
    overrides: dict[str, str] = {}
    relabel: list[list[str]] = []
    undo: list[list[str]] = []
    if case == "worker-as-provider-host":
        overrides["DOCKER_HOST"] = cluster.worker.host
    elif case == "data-host-is-the-worker":
        overrides["DATA_NODE_HOST"] = cluster.worker.host
    elif case == "registry-not-answering":
        # The bridge address on a port nothing listens on.
        overrides["REGISTRY"] = f"{cluster.gateway}:5999"
    elif case == "registry-over-https":
        # The plain-HTTP registry configured without http://: the engines would pull over HTTPS.
        overrides["REGISTRY_SCHEME"] = "https"
    elif case == "data-node-disk-below-floor":
        overrides["PREFLIGHT_MIN_FREE_GB"] = "99999"
    elif case == "no-edge-label":
        relabel.append(["node", "update", "--label-rm", EDGE_LABEL, cluster.manager.node_id])
        undo.append(["node", "update", "--label-add", f"{EDGE_LABEL}=true", cluster.manager.node_id])
    elif case == "two-data-labels":
        relabel.append(["node", "update", "--label-add", f"{DATA_LABEL}=true", cluster.worker.node_id])
        undo.append(["node", "update", "--label-rm", DATA_LABEL, cluster.worker.node_id])
    try:
        for argv in relabel:
            cluster.manager.docker(*argv)
        result = preflight(cluster, **overrides)
    finally:
        for argv in undo:
            cluster.manager.docker(*argv)
    assert result.returncode == 1, result.stdout
    for fragment in fragments:
        assert fragment in result.stderr
    assert result.stdout == ""


def _cross_node_answer(cluster: SwarmCluster, image: str, *, encrypted: bool) -> tuple[bool, str]:
    """A listener pinned to the data node and a client pinned to the worker, on one overlay: does
    the client get the listener's answer through the service name? DNS round robin, as the
    program's internal services (components/swarm/task_defaults.py ENDPOINT_MODE)."""
    tag = f"{cluster.run_id}-{'enc' if encrypted else 'plain'}"
    manager = cluster.manager
    options = ["--opt", "encrypted"] if encrypted else []
    manager.docker("network", "create", "--driver", "overlay", *options, tag)
    listener = f"{tag}-listen"
    client = f"{tag}-client"
    try:
        manager.docker(
            "service",
            "create",
            "--detach",
            "--name",
            listener,
            "--network",
            tag,
            "--endpoint-mode",
            "dnsrr",
            "--constraint",
            f"node.labels.{DATA_LABEL}==true",
            "--restart-condition",
            "none",
            image,
            "python3",
            "-m",
            "http.server",
            "8000",
        )
        script = (
            "import time, urllib.request\n"
            "for _ in range(12):\n"
            "    try:\n"
            f"        print(urllib.request.urlopen('http://{listener}:8000/', timeout=2).status); break\n"
            "    except Exception as exc:\n"
            "        print('retry', exc); time.sleep(1)\n"
        )
        manager.docker(
            "service",
            "create",
            "--detach",
            "--name",
            client,
            "--network",
            tag,
            "--constraint",
            f"node.id=={cluster.worker.node_id}",
            "--restart-condition",
            "none",
            image,
            "python3",
            "-c",
            script,
        )

        def finished() -> bool:
            states = manager.docker("service", "ps", "--format", "{{.CurrentState}}", client, check=False).stdout
            return any(s.startswith(("Complete", "Failed", "Rejected")) for s in states.splitlines())

        wait_until(f"client task of {client}", finished, 120, interval=1)
        logs = manager.docker("service", "logs", "--raw", client, check=False)
        text = logs.stdout + logs.stderr
        return "200" in text.split(), text
    finally:
        for service in (client, listener):
            manager.docker("service", "rm", service, check=False)
        # The network goes once the tasks' attachments are released.
        deadline = time.monotonic() + 60
        while manager.docker("network", "rm", tag, check=False).returncode != 0 and time.monotonic() < deadline:
            time.sleep(1)


def test_tasks_on_different_nodes_talk_over_an_overlay(cluster: SwarmCluster, probe_image: str) -> None:
    answered, log = _cross_node_answer(cluster, probe_image, encrypted=False)
    assert answered, log


def test_encrypted_overlay_carries_traffic_exactly_when_the_kernel_has_ipsec_esp(
    cluster: SwarmCluster, probe_image: str
) -> None:
    """The program's overlays are encrypted. Swarm puts their VXLAN traffic in IPsec ESP with
    rfc4106(gcm(aes)); a kernel without ESP/GCM cannot, and the engine then fails closed: no task
    traffic at all, never cleartext. So: traffic passes iff the kernel holds such a state."""
    esp = kernel_has_ipsec_esp()
    answered, log = _cross_node_answer(cluster, probe_image, encrypted=True)
    cluster.say(
        f"[swarm] encrypted overlay: kernel IPsec ESP/GCM {'available' if esp else 'missing'}, "
        f"cross-node traffic {'passed' if answered else 'blocked'}"
    )
    assert answered == esp, log
