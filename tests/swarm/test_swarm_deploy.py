"""The unmodified program (__main__.py, cluster.mode=swarm) deployed by the rehearsal engine onto the
test swarm: each scenario prints `[swarm] <name>: <s>s, passed (...)`."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import time

import docker
import pytest
from cluster import SwarmCluster, kernel_has_ipsec_esp
from images import tags
from program import stack_config
from rehearsal_engine import Rehearsal

HTTP_PORT, HTTPS_PORT = 18080, 18443


def _get(address: str, ca_pem: str, path: str = "/health", timeout: float = 5) -> int:
    context = ssl.create_default_context(cadata=ca_pem)
    sock = socket.create_connection((address, HTTPS_PORT), timeout=timeout)
    conn = http.client.HTTPSConnection("localhost", HTTPS_PORT, timeout=timeout, context=context)
    conn.sock = context.wrap_socket(sock, server_hostname="localhost")
    try:
        conn.request("GET", path, headers={"Host": f"localhost:{HTTPS_PORT}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack(cluster: SwarmCluster, probe_image: str, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("swarm-stack")
    checkout = root / "checkout"
    shutil.copytree(tags.STANDIN_CHECKOUT, checkout, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "media").mkdir()
    images = {
        name: cluster.push_image(image)
        for name, image in (("pg", tags.POSTGRES), ("redis", tags.REDIS), ("nginx", tags.NGINX))
    }
    base = stack_config("rehearsal")
    config = {
        **base,
        "docker:host": cluster.manager.host,
        "catalogizer:namePrefix": f"{cluster.run_id}-st",
        "catalogizer:api": {
            **base["catalogizer:api"],
            "source": str(checkout),
            "mediaRoot": str(root / "media"),
            "replicas": 2,
            "memoryMb": 256,
            "cpus": "0.5",
        },
        "catalogizer:postgres": {"image": images["pg"], "memoryMb": 256, "cpus": "0.5"},
        "catalogizer:redis": {"image": images["redis"], "memoryMb": 64, "cpus": "0.5"},
        "catalogizer:proxy": {"image": images["nginx"], "httpPort": HTTP_PORT, "httpsPort": HTTPS_PORT},
        "catalogizer:backup": {"dir": str(root / "backups"), "keep": 5},
        "catalogizer:health": {
            "waitTimeoutSeconds": 150,
            "timeoutSeconds": 90,
            "intervalSeconds": 2,
            "probeAddress": cluster.manager.address,
        },
        "catalogizer:cluster": {
            "mode": "swarm",
            "registry": f"http://{cluster.registry}",
            "dataNodeHost": cluster.data.host,
            # tests/swarm/test_cluster.py: an encrypted overlay passes nothing on a kernel without ESP.
            "encryptedOverlay": kernel_has_ipsec_esp(),
        },
    }
    client = docker.DockerClient(base_url=cluster.manager.host, timeout=300)
    engine = Rehearsal(
        root / "state.json", client=client, log=lambda line: cluster.say(line) if "failed" in line else None
    )
    holder = {"engine": engine, "config": config, "client": client}
    try:
        yield holder
    finally:
        engine.destroy()


def test_fresh_deploy_across_the_nodes(cluster: SwarmCluster, stack: dict) -> None:
    started = time.monotonic()
    result = stack["engine"].up("rehearsal", stack["config"])
    outputs = result.outputs
    client = stack["client"]
    placed = {}
    for role, service in outputs["services"].items():
        tasks = [
            t
            for t in client.api.tasks(filters={"service": service, "desired-state": "running"})
            if t["Status"]["State"] == "running"
        ]
        placed[role] = sorted({next(n.index for n in cluster.nodes if n.node_id == t["NodeID"]) for t in tasks})
    assert placed["postgres"] == [2] and placed["redis"] == [2] and placed["nginx"] == [1]
    assert len(placed["api"]) == 2, placed  # two replicas, spread over two nodes
    assert outputs["health"]["status"] == "healthy"
    assert outputs["apiImage"].startswith(f"{cluster.registry}/") and "@sha256:" in outputs["apiImage"]
    assert _get(cluster.manager.address, outputs["tlsCertificate"]) == 200
    cluster.say(
        f"[swarm] fresh deploy across the nodes: {time.monotonic() - started:.1f}s, passed "
        f"(nodes: api {placed['api']}, nginx {placed['nginx']}, postgres/redis {placed['postgres']}; "
        f"{len(result.actions('create'))} creates)"
    )
