"""The unmodified program (__main__.py, cluster.mode=swarm) deployed by the rehearsal engine onto the
test swarm: each scenario prints `[swarm] <name>: <s>s, passed (...)`."""

from __future__ import annotations

import http.client
import itertools
import json
import re
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
from cluster import SwarmCluster, kernel_has_ipsec_esp
from data_node import probe_rows, psql, running_tasks, task_container
from images import tags
from program import stack_config
from rehearsal_engine import DeploymentFailed, Rehearsal

HTTP_PORT, HTTPS_PORT = 18080, 18443


def _get(address: str, ca_pem: str, path: str = "/health", timeout: float = 5) -> tuple[int, bytes]:
    context = ssl.create_default_context(cadata=ca_pem)
    sock = socket.create_connection((address, HTTPS_PORT), timeout=timeout)
    conn = http.client.HTTPSConnection("localhost", HTTPS_PORT, timeout=timeout, context=context)
    conn.sock = context.wrap_socket(sock, server_hostname="localhost")
    try:
        conn.request("GET", path, headers={"Host": f"localhost:{HTTPS_PORT}"})
        response = conn.getresponse()
        return response.status, response.read()
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
            "waitTimeoutSeconds": 240,
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
    holder = {"engine": engine, "config": config, "client": client, "checkout": checkout}
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
        tasks = running_tasks(client, service)
        placed[role] = sorted({next(n.index for n in cluster.nodes if n.node_id == t["NodeID"]) for t in tasks})
    assert placed["postgres"] == [2] and placed["redis"] == [2] and placed["nginx"] == [1]
    assert len(placed["api"]) == 2, placed  # two replicas, spread over two nodes
    assert outputs["health"]["status"] == "healthy"
    assert outputs["apiImage"].startswith(f"{cluster.registry}/") and "@sha256:" in outputs["apiImage"]
    assert _get(cluster.manager.address, outputs["tlsCertificate"])[0] == 200
    stack["outputs"] = outputs
    cluster.say(
        f"[swarm] fresh deploy across the nodes: {time.monotonic() - started:.1f}s, passed "
        f"(nodes: api {placed['api']}, nginx {placed['nginx']}, postgres/redis {placed['postgres']}; "
        f"{len(result.actions('create'))} creates)"
    )


@dataclass
class ClientLoop:
    """GET /health through the edge node, 10 per second, until stopped: every answer, in order."""

    address: str
    ca_pem: str
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            at = time.monotonic()
            try:
                status, body = _get(self.address, self.ca_pem, timeout=3)
                version = str(json.loads(body).get("version", "")) if status == 200 else ""
            except (OSError, ValueError, http.client.HTTPException) as exc:
                status, version = 0, type(exc).__name__
            self.answers.append((at, status, version))
            self.stop.wait(max(0.0, 0.1 - (time.monotonic() - at)))

    def failed(self) -> list[tuple[float, int, str]]:
        return [a for a in self.answers if a[1] != 200]

    def longest_gap(self) -> float:
        ok = [a[0] for a in self.answers if a[1] == 200]
        return max((b - a for a, b in itertools.pairwise(ok)), default=0.0)


def _set_build(checkout: Path, version: str, health_mode: str = "ok") -> None:
    dockerfile = checkout / tags.STANDIN_DOCKERFILE
    text = re.sub(r"^ARG VERSION=.*$", f"ARG VERSION={version}", dockerfile.read_text(), flags=re.M)
    dockerfile.write_text(re.sub(r"^ARG HEALTH_MODE=.*$", f"ARG HEALTH_MODE={health_mode}", text, flags=re.M))


def _under_load(cluster: SwarmCluster, stack: dict, action: Callable[[], object]) -> tuple[ClientLoop, object]:
    loop = ClientLoop(cluster.manager.address, stack["outputs"]["tlsCertificate"])
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        outcome = action()
        time.sleep(2)
    finally:
        loop.stop.set()
        thread.join(timeout=10)
    return loop, outcome


def test_rolling_update_under_a_client_loop(cluster: SwarmCluster, stack: dict) -> None:
    started = time.monotonic()
    _set_build(stack["checkout"], "v2")
    loop, result = _under_load(cluster, stack, lambda: stack["engine"].up("rehearsal", stack["config"]))
    stack["outputs"] = result.outputs
    assert result.outputs["health"]["status"] == "healthy"
    versions = [a[2] for a in loop.answers if a[1] == 200]
    assert versions[0] == "dev" and versions[-1] == "v2", sorted(set(versions))
    assert loop.failed() == [], loop.failed()[:5]
    cluster.say(
        f"[swarm] rolling update under a client loop: {time.monotonic() - started:.1f}s, passed "
        f"(sent {len(loop.answers)}, failed 0, longest gap {loop.longest_gap():.2f}s)"
    )


def test_broken_image_rolls_back_by_itself(cluster: SwarmCluster, stack: dict) -> None:
    started = time.monotonic()
    client = stack["client"]
    service = stack["outputs"]["services"]["api"]
    serving = client.api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    _set_build(stack["checkout"], "broken", health_mode="broken")

    def bad_update() -> str:
        try:
            stack["engine"].up("rehearsal", stack["config"])
        except DeploymentFailed as exc:
            return "\n".join(exc.failures)
        raise AssertionError("the broken update went through")

    loop, failures = _under_load(cluster, stack, bad_update)
    assert "service rollback completed" in str(failures), failures
    after = client.api.inspect_service(service)
    assert after["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == serving
    versions = [a[2] for a in loop.answers]
    assert "broken" not in versions and loop.failed() == [], loop.failed()[:5]
    assert set(v for v in versions) == {"v2"}
    cluster.say(
        f"[swarm] broken image rolls back by itself: {time.monotonic() - started:.1f}s, passed "
        f"(sent {len(loop.answers)}, answered by the broken image 0, failed 0; Swarm: "
        f"{(after.get('UpdateStatus') or {}).get('State')})"
    )


def test_worker_lost_its_tasks_move_and_requests_recover(cluster: SwarmCluster, stack: dict) -> None:
    """The worker (node 3, one API task, no edge or data label) drops off the network under a client
    loop: Swarm marks it down, starts its task on another node, and the answers recover."""
    started = time.monotonic()
    client = stack["client"]
    service = stack["outputs"]["services"]["api"]

    def api_nodes() -> list[str]:
        return [t["NodeID"] for t in running_tasks(client, service)]

    # Back to the v2 build (the broken one was rolled back), three replicas spread over three nodes:
    # the worker surely runs one (an update in place).
    _set_build(stack["checkout"], "v2")
    stack["config"]["catalogizer:api"] = {**stack["config"]["catalogizer:api"], "replicas": 3}
    stack["outputs"] = stack["engine"].up("rehearsal", stack["config"]).outputs
    assert cluster.worker.node_id in api_nodes(), "the worker runs no API task to lose"
    moved_after: list[float] = []

    def lose_worker() -> None:
        cut_at = time.monotonic()
        cluster.cut(cluster.worker)
        try:
            deadline = cut_at + 90
            while time.monotonic() < deadline:
                nodes = api_nodes()
                if len(nodes) == 3 and cluster.worker.node_id not in nodes:
                    moved_after.append(time.monotonic() - cut_at)
                    break
                time.sleep(1)
            time.sleep(10)  # answers after the move count too
        finally:
            cluster.reconnect(cluster.worker)

    loop, _ = _under_load(cluster, stack, lose_worker)
    assert moved_after, "the worker's API task was not started elsewhere within 90 s"
    failed, gap = loop.failed(), loop.longest_gap()
    tail = [a for a in loop.answers if a[0] >= loop.answers[-1][0] - 5]
    assert tail and all(a[1] == 200 for a in tail), tail[-5:]
    assert gap < 30, f"longest gap without an answer {gap:.1f}s"
    cluster.say(
        f"[swarm] worker lost, tasks rescheduled: {time.monotonic() - started:.1f}s, passed "
        f"(task on another node after {moved_after[0]:.1f}s; sent {len(loop.answers)}, failed {len(failed)}, "
        f"longest gap {gap:.1f}s)"
    )


def test_an_nginx_only_change_is_verified_again(cluster: SwarmCluster, stack: dict) -> None:
    """A new nginx.conf without a new API version (HSTS without includeSubDomains) is a new Swarm config
    and an update of the nginx service alone; the swarm health hook runs again for it (its triggers
    include every service's spec revision, components/swarm/checks.py), not only with a rollout."""
    started = time.monotonic()
    config = stack["config"]
    config["catalogizer:tls"] = {**config.get("catalogizer:tls", {}), "hstsIncludeSubdomains": False}
    result = stack["engine"].up("rehearsal", config)
    changed = sorted({event.name for event in result.changes()})
    assert "proxy-service" in changed and "proxy-nginx-conf" in changed, changed
    # No rollout: the API service, its image and the pre-update backup stay as they are.
    assert not {"api-service", "api-registry-push", "pre-update-backup-pg-dump"} & set(changed), changed
    assert "health-verify" in changed, changed
    health = result.outputs["health"]
    assert health["status"] == "healthy", health
    assert _get(cluster.manager.address, result.outputs["tlsCertificate"])[0] == 200
    cluster.say(
        f"[swarm] nginx-only change verified again: {time.monotonic() - started:.1f}s, passed "
        f"(changed: {', '.join(changed)}; health hook {health['seconds']}s, {health['attempts']} attempts)"
    )


def test_restore_through_the_whole_program(cluster: SwarmCluster, stack: dict) -> None:
    """`restoreFrom` set on the unmodified program, as an operator rolls back data: the run dumps first,
    the restore holds the API service at 0 tasks while it replays the dump through the data node, the
    API's role is made again, the API service comes back with every replica, and health passes."""
    started = time.monotonic()
    client, engine, config = stack["client"], stack["engine"], stack["config"]
    services = stack["outputs"]["services"]
    password = stack["outputs"]["postgresPassword"]
    _, pg = task_container(client, services["postgres"])
    psql(cluster, pg, password, "create table restore_probe (id int primary key, note text)")
    psql(cluster, pg, password, "insert into restore_probe values (1, 'in the dump')")
    # A rollout: its pre-update dump holds the row.
    _set_build(stack["checkout"], "v3")
    dumped = engine.up("rehearsal", config).outputs["lastBackup"]
    psql(cluster, pg, password, "insert into restore_probe values (2, 'after the dump')")

    config["catalogizer:restoreFrom"] = dumped["file"]
    result = engine.up("rehearsal", config)
    outputs = result.outputs
    _, pg = task_container(client, services["postgres"])
    assert probe_rows(cluster, pg, password) == [("1", "in the dump")]
    assert outputs["lastRestore"]["restored"] == dumped["file"]
    assert outputs["lastRestore"]["sha256"] == dumped["sha256"]
    # The restore's own safety dump of what it replaced (no rollout here, so no pre-update dump).
    assert Path(outputs["lastRestore"]["safetyDump"]).is_file()
    # In the order the program declares: the replay, the API's role, then the API service again.
    done: dict[str, float] = {}
    for event in result.events:
        if event.action in ("create", "update"):
            done.setdefault(event.name, event.at)
    order = ["restore-pg-restore", "db-roles-api-role", "api-service"]
    assert all(name in done for name in order), sorted(done)
    assert [done[name] for name in order] == sorted(done[name] for name in order), {n: done[n] for n in order}
    replicas = config["catalogizer:api"]["replicas"]
    running = running_tasks(client, services["api"])
    assert len(running) == replicas, running
    assert outputs["health"]["status"] == "healthy"
    status, body = _get(cluster.manager.address, outputs["tlsCertificate"])
    assert status == 200 and json.loads(body)["version"] == "v3", body
    cluster.say(
        f"[swarm] restore through the whole program: {time.monotonic() - started:.1f}s, passed (row written "
        f"after the dump gone, safety dump kept; replay, API role, API service in that order; "
        f"{len(running)} of {replicas} API tasks back, health {outputs['health']['status']} in "
        f"{outputs['health']['seconds']}s)"
    )
