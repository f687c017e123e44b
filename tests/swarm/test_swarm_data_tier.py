"""The program's own swarm data tier (components/swarm/: Secrets, SwarmNetwork, SwarmData) deployed
by the rehearsal engine onto the test swarm, then the pre-update backup hook run through the data
node as the program wires it (scripts/backup.py with PG_SERVICE and the data node's DOCKER_HOST)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
from cluster import SwarmCluster
from images import tags
from program import PROJECT_DIR, stack_config
from rehearsal_engine import Rehearsal

PROGRAM = Path(__file__).resolve().parents[1] / "rehearsal" / "programs" / "swarm_data.py"
BACKUP = PROJECT_DIR / "scripts" / "backup.py"


def _task_container(cluster: SwarmCluster, client: docker.DockerClient, service: str) -> tuple[str, str]:
    (task,) = [
        t
        for t in client.api.tasks(filters={"service": service, "desired-state": "running"})
        if t["Status"]["State"] == "running"
    ]
    return task["NodeID"], task["Status"]["ContainerStatus"]["ContainerID"]


def test_data_tier_runs_on_the_data_node_and_is_backed_up_through_it(cluster: SwarmCluster, tmp_path: Path) -> None:
    started = time.monotonic()
    postgres_image = cluster.push_image(tags.POSTGRES)
    redis_image = cluster.push_image(tags.REDIS)
    prefix = f"{cluster.run_id}-data"
    base = stack_config("rehearsal")
    config = {
        **base,
        "catalogizer:namePrefix": prefix,
        "catalogizer:api": {**base["catalogizer:api"], "mediaRoot": str(tmp_path)},
        "catalogizer:postgres": {"image": postgres_image, "memoryMb": 256, "cpus": "1"},
        "catalogizer:redis": {"image": redis_image, "memoryMb": 64, "cpus": "0.5"},
        "catalogizer:backup": {"dir": str(tmp_path / "backups"), "keep": 2},
        # initdb on a small node: the converge wait (the provider's timeout) gets room.
        "catalogizer:health": {"waitTimeoutSeconds": 120},
        "catalogizer:cluster": {
            "mode": "swarm",
            "registry": f"http://{cluster.registry}",
            "dataNodeHost": cluster.data.host,
        },
    }
    client = docker.DockerClient(base_url=cluster.manager.host, timeout=300)
    engine = Rehearsal(tmp_path / "state.json", client=client, program=PROGRAM)
    try:
        deployed = engine.up("rehearsal", config)
        services = deployed.outputs["services"]
        password = deployed.outputs["postgresPassword"]
        for role in ("postgres", "redis"):
            node, _ = _task_container(cluster, client, services[role])
            assert node == cluster.data.node_id, f"{role} runs on {node}, not the data node"
        # The volumes were made on the data node's own engine, through the explicit provider.
        for volume in deployed.outputs["volumes"].values():
            labels = json.loads(cluster.data.docker("volume", "inspect", "--format", "{{json .Labels}}", volume).stdout)
            assert labels["catalogizer.stack"] == prefix
            assert cluster.manager.docker("volume", "inspect", volume, check=False).returncode != 0

        _, pg = _task_container(cluster, client, services["postgres"])
        mode = cluster.data.docker("exec", pg, "stat", "-c", "%a %u:%g", "/run/secrets/postgres-superuser-password")
        assert mode.stdout.split() == ["440", "0:0"]
        # The superuser's password is the Swarm secret's content: scram over TCP accepts it.
        query = cluster.data.docker(
            "exec", "-e", f"PGPASSWORD={password}", pg,
            "psql", "-h", "127.0.0.1", "-U", "catalogizer", "-d", "catalogizer", "-tAc", "select 42",
        )  # fmt: skip
        assert query.stdout.strip() == "42"
        inspected = json.loads(cluster.data.docker("inspect", pg).stdout)[0]
        assert inspected["HostConfig"]["CapDrop"] == ["ALL"] and inspected["HostConfig"]["ReadonlyRootfs"] is True
        assert inspected["Config"]["User"] == "999:0"

        _, redis = _task_container(cluster, client, services["redis"])
        # redis.conf came as a secret at its absolute path; the health check's REDISCLI_AUTH works.
        assert cluster.data.docker("exec", redis, "redis-cli", "--no-auth-warning", "ping").stdout.strip() == "PONG"
        assert cluster.data.docker("exec", redis, "touch", "/probe", check=False).returncode != 0

        # The pre-update backup, as components/backup.database_env wires it in swarm mode.
        environment = {
            **os.environ,
            "PG_SERVICE": services["postgres"],
            "DOCKER_HOST": cluster.data.host,
            "PGUSER": "catalogizer",
            "PGDATABASE": "catalogizer",
            "PGPASSWORD": password,
            "BACKUP_DIR": str(tmp_path / "backups"),
            "BACKUP_KEEP": "2",
            "STACK_NAME": prefix,
        }
        environment.pop("PG_CONTAINER", None)
        dump = subprocess.run(
            [sys.executable, str(BACKUP)], env=environment, capture_output=True, text=True, timeout=300, check=False
        )
        assert dump.returncode == 0, dump.stderr
        summary = json.loads(dump.stdout.strip().splitlines()[-1])
        assert Path(summary["file"]).is_file() and summary["bytes"] > 0
        assert password not in dump.stdout + dump.stderr
    finally:
        destroyed = engine.destroy()
    # destroy --exclude-protected: the services and secrets go, the data volumes stay (protected).
    assert services["postgres"] not in [s["Spec"]["Name"] for s in client.api.services()]
    assert set(deployed.outputs["volumes"].values()) <= set(destroyed.kept_protected)
    cluster.say(f"[swarm] data tier on the data node + backup through it: {time.monotonic() - started:.1f}s, passed")
