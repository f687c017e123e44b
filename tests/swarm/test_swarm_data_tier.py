"""The program's own swarm data tier (components/swarm/: Secrets, SwarmNetwork, SwarmData) deployed
by the rehearsal engine onto the test swarm, then the pre-update backup hook run through the data
node as the program wires it (scripts/backup.py with PG_SERVICE and the data node's DOCKER_HOST),
and the restore hook (scripts/restore.py, as components/restore.py wires it in swarm mode) replaying
that dump through the data node while a stand-in API service is kept at 0 tasks by the manager.
Then the off-host path (catalogizer:backup.repository): the swarm preflight initialises a restic
repository, the backup pushes to it, the restore drill restores the pushed copy into a scratch
database on PostgreSQL's task and compares it with the manifest, and `restoreFrom: restic:latest`
replays the copy before this run's own push, all through the data node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docker
from cluster import DATA_LABEL, EDGE_LABEL, SwarmCluster
from data_node import probe_rows, psql, task_container
from docker.models.services import Service
from images import tags
from offsite_targets import local_target
from program import PROJECT_DIR, stack_config
from rehearsal_engine import Rehearsal

PROGRAM = Path(__file__).resolve().parents[1] / "rehearsal" / "programs" / "swarm_data.py"
BACKUP = PROJECT_DIR / "scripts" / "backup.py"
RESTORE = PROJECT_DIR / "scripts" / "restore.py"
DRILL = PROJECT_DIR / "scripts" / "restore_drill.py"
SWARM_PREFLIGHT = PROJECT_DIR / "scripts" / "swarm_preflight.py"
# What the dump holds, and what is written after it (which the restore must take away again).
DUMPED = [("1", "before the update"), ("2", "also dumped")]
# What components/backup.database_env gives every database hook in swarm mode (restic's part added).
DATABASE_ENV = (
    "PG_SERVICE", "DOCKER_HOST", "PGUSER", "PGDATABASE", "PGPASSWORD", "BACKUP_DIR", "BACKUP_KEEP", "STACK_NAME",
)  # fmt: skip
# Each bounded wait of the restore scenario.
TASKS_SECONDS = 120


def _running_containers(cluster: SwarmCluster, service: str) -> int:
    """Containers of the service still running on any node (what the database would still see)."""
    return sum(
        len(node.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}").stdout.split())
        for node in cluster.nodes
    )


def _wait(what: str, probe: Callable[[], bool], seconds: float = TASKS_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(1)


def _restore_through_the_data_node(
    cluster: SwarmCluster,
    client: docker.DockerClient,
    hook_env: dict[str, str],
    dump: Path,
    image: str,
    prefix: str,
) -> str:
    """Replays `dump` with scripts/restore.py as the swarm topology wires it; returns the summary line."""
    password = hook_env["PGPASSWORD"]
    postgres = hook_env["PG_SERVICE"]
    _, pg = task_container(client, postgres)
    # Written after the dump: a new row, a changed row and a new table, all gone after the restore.
    psql(cluster, pg, password, "insert into restore_probe values (3, 'after the dump')")
    psql(cluster, pg, password, "update restore_probe set note = 'changed' where id = 1")
    psql(cluster, pg, password, "create table after_dump (x int)")
    assert probe_rows(cluster, pg, password) != DUMPED
    # The API service the restore keeps off the database: a stand-in with the program's name for it
    # (components/swarm/app.api_service_name), two tasks anywhere on the swarm. Each takes 4 s to stop
    # after SIGTERM (within Swarm's default 10 s grace), as a draining API does: a hook that did not
    # wait for them would return while they still run.
    api_name = f"{prefix}-api"
    api = client.services.create(
        image,
        command=["sh", "-c", "trap 'sleep 4; exit 0' TERM; while :; do sleep 1; done"],
        name=api_name,
        mode=docker.types.ServiceMode("replicated", replicas=2),
        labels={"catalogizer.stack": prefix, "catalogizer.role": "api"},
    )
    try:
        _wait("2 stand-in API tasks running", lambda: _running_containers(cluster, api_name) == 2)
        restored = subprocess.run(
            [sys.executable, str(RESTORE)],
            env={
                **hook_env,
                "RESTORE_FILE": str(dump),
                "API_SERVICE": api_name,
                # The provider's docker:host: the hook scales the API service there.
                "MANAGER_DOCKER_HOST": cluster.manager.host,
            },
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert restored.returncode == 0, restored.stderr
        assert password not in restored.stdout + restored.stderr
        summary = json.loads(restored.stdout.strip().splitlines()[-1])
        assert summary["apiService"] == api_name and summary["apiReplicasStopped"] == 2
        assert summary["sha256"] == dump.with_name(dump.name + ".sha256").read_text().split()[0]
        assert Path(summary["safetyDump"]).is_file()
        # When the hook returned, no task of the API ran anywhere, and the service stays at 0
        # for the program's service update to bring back.
        assert _running_containers(cluster, api_name) == 0
        api.reload()
        assert api.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 0
        # The data is the dump's: the rows as dumped, and what came after is gone.
        _, pg_after = task_container(client, postgres)
        assert pg_after == pg, "PostgreSQL's task was replaced during the restore"
        assert probe_rows(cluster, pg, password) == DUMPED
        assert psql(cluster, pg, password, "select to_regclass('public.after_dump') is null") == "t"
        _update_then_roll_back(cluster, client, api, summary["sha256"])
        return f"{summary['seconds']}s in the hook, 2 API tasks stopped, back by the update, 0 after a rollback"
    finally:
        api.remove()
        _wait("stand-in API containers removed", lambda: _running_containers(cluster, api_name) == 0)


def _offsite_through_the_data_node(
    cluster: SwarmCluster,
    client: docker.DockerClient,
    hook_env: dict[str, str],
    work: Path,
    prefix: str,
) -> str:
    """catalogizer:backup.repository in swarm mode, each hook with the environment the program gives it
    (components/backup.database_env + offsite_env; restic's secrets only there, never on argv: the
    Target's restic wrapper logs every argv). Returns the figures for the summary line."""
    password = hook_env["PGPASSWORD"]
    repo_password = "repo-" + os.urandom(16).hex()
    target = local_target(work)
    offsite = {
        **{name: hook_env[name] for name in DATABASE_ENV},
        # components/backup.offsite_env, without backend variables (a local folder needs none).
        "RESTIC_REPOSITORY": target.repository,
        "RESTIC_PASSWORD": repo_password,
        "BACKUP_KEEP_DAILY": "7",
        "BACKUP_KEEP_WEEKLY": "4",
        "BACKUP_SECRET_ENV": "",
    }

    def run(script: Path, **extra: str) -> dict:
        done = target.run(script, {**offsite, **extra})
        assert done.returncode == 0, f"{script.name}: {done.stderr}"
        for secret in (password, repo_password):
            assert secret not in done.stdout + done.stderr + target.argv_log.read_text(), script.name
        return json.loads(done.stdout.strip().splitlines()[-1])

    # The swarm preflight as components/swarm/checks.py wires it: it initialises the repository.
    checked = run(
        SWARM_PREFLIGHT,
        DOCKER_HOST=cluster.manager.host,
        DATA_NODE_HOST=cluster.data.host,
        REGISTRY=cluster.registry,
        REGISTRY_SCHEME="http",
        EDGE_LABEL=EDGE_LABEL,
        DATA_LABEL=DATA_LABEL,
        STACK_LABEL=prefix,
    )
    assert checked["repository"]["initialised"] == "now"
    # The pre-update backup pushes the dump, its checksum and manifest (taken in PostgreSQL's task).
    first = run(BACKUP)
    assert first["remoteSnapshots"] == 1 and first["repository"] == target.repository
    # The drill, as components/restore_drill.py wires it: the pushed copy into `<db>_restore_drill` on
    # the data node's PostgreSQL, compared with the manifest, then dropped.
    drilled = run(DRILL)
    record_file = Path(hook_env["BACKUP_DIR"]) / f"{prefix}_restore-drill.json"
    assert json.loads(record_file.read_text()) == drilled
    assert drilled["ok"] is True and drilled["snapshot"] == first["snapshot"], drilled
    assert (drilled["tables"], drilled["rows"], drilled["differences"]) == (1, len(DUMPED), [])
    _, pg = task_container(client, hook_env["PG_SERVICE"])
    scratch = "select count(*) from pg_database where datname = 'catalogizer_restore_drill'"
    assert psql(cluster, pg, password, scratch) == "0"
    # restoreFrom: restic:latest in a later run: its own pre-update push comes first and is excluded
    # (components/data_safety.py), so the copy before it comes back.
    psql(cluster, pg, password, "insert into restore_probe values (4, 'after the push')")
    second = run(BACKUP)
    assert second["remoteSnapshots"] == 2 and second["snapshot"] != first["snapshot"]
    restored = run(
        RESTORE,
        RESTORE_SNAPSHOT="latest",
        RESTORE_EXCLUDE_SNAPSHOT=second["snapshot"],
        # The stand-in API service is gone by now: the hook finds none to scale on the manager.
        API_SERVICE=f"{prefix}-api",
        MANAGER_DOCKER_HOST=cluster.manager.host,
    )
    assert restored["snapshot"] == first["snapshot"] and restored["apiReplicasStopped"] == 0
    assert probe_rows(cluster, pg, password) == DUMPED
    return (
        f"preflight initialised the repository, pushed {first['bytes']} B as {first['snapshot']}, drill "
        f"{drilled['seconds']}s ok on {drilled['tables']} table/{drilled['rows']} rows with no scratch database left, "
        f"restic:latest restored {restored['snapshot']} past this run's {second['snapshot']} in {restored['seconds']}s"
    )


def _update_then_roll_back(cluster: SwarmCluster, client: docker.DockerClient, api: Service, sha: str) -> None:
    """What `pulumi up` does next to the service the hook left at 0, on the real swarm: the provider's
    update sends the whole declared spec, replicas included, with the restore's label in the task
    spec (TF resourceDockerServiceUpdate, createServiceSpec); the tasks come back. A rollback (Swarm's
    automatic one after a failed health check uses the same PreviousSpec as a manual one: swarmkit
    orchestrator/update/updater.go rollbackUpdate) returns to the spec the update replaced: 0 tasks."""
    api.reload()
    spec = api.attrs["Spec"]
    task = spec["TaskTemplate"]
    task["ContainerSpec"]["Labels"] = {"catalogizer.restored-from": sha}
    client.api.update_service(
        api.id,
        api.attrs["Version"]["Index"],
        task_template=task,
        name=spec["Name"],
        labels=spec.get("Labels"),
        mode={"Replicated": {"Replicas": 2}},
    )
    name = spec["Name"]
    _wait("2 API tasks after the service update", lambda: _running_containers(cluster, name) == 2)
    api.reload()
    assert api.attrs["PreviousSpec"]["Mode"]["Replicated"]["Replicas"] == 0
    cluster.manager.docker("service", "rollback", "--detach", name)
    _wait("no API task after the rollback", lambda: _running_containers(cluster, name) == 0)
    api.reload()
    assert api.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 0


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
            node, _ = task_container(client, services[role])
            assert node == cluster.data.node_id, f"{role} runs on {node}, not the data node"
        # The volumes were made on the data node's own engine, through the explicit provider.
        for volume in deployed.outputs["volumes"].values():
            labels = json.loads(cluster.data.docker("volume", "inspect", "--format", "{{json .Labels}}", volume).stdout)
            assert labels["catalogizer.stack"] == prefix
            assert cluster.manager.docker("volume", "inspect", volume, check=False).returncode != 0

        _, pg = task_container(client, services["postgres"])
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

        _, redis = task_container(client, services["redis"])
        # redis.conf came as a secret at its absolute path; the health check's REDISCLI_AUTH works.
        assert cluster.data.docker("exec", redis, "redis-cli", "--no-auth-warning", "ping").stdout.strip() == "PONG"
        assert cluster.data.docker("exec", redis, "touch", "/probe", check=False).returncode != 0

        psql(cluster, pg, password, "create table restore_probe (id int primary key, note text)")
        values = ", ".join(f"({i}, '{note}')" for i, note in DUMPED)
        psql(cluster, pg, password, f"insert into restore_probe values {values}")

        # The pre-update backup, as components/backup.database_env wires it in swarm mode.
        scenario = time.monotonic()
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

        restore_detail = _restore_through_the_data_node(
            cluster, client, environment, Path(summary["file"]), postgres_image, prefix
        )
        restore_seconds = time.monotonic() - scenario

        offsite_started = time.monotonic()
        offsite_detail = _offsite_through_the_data_node(cluster, client, environment, tmp_path / "offsite", prefix)
        offsite_seconds = time.monotonic() - offsite_started
    finally:
        destroyed = engine.destroy()
    # destroy --exclude-protected: the services and secrets go, the data volumes stay (protected).
    assert services["postgres"] not in [s["Spec"]["Name"] for s in client.api.services()]
    assert set(deployed.outputs["volumes"].values()) <= set(destroyed.kept_protected)
    cluster.say(f"[swarm] data tier on the data node + backup through it: {time.monotonic() - started:.1f}s, passed")
    cluster.say(
        f"[swarm] backup and restore through the data node: {restore_seconds:.1f}s, passed "
        f"(dump replayed into PostgreSQL's task on the data node, data equals the dump; {restore_detail})"
    )
    cluster.say(
        f"[swarm] off-host backup and drill through the data node: {offsite_seconds:.1f}s, passed ({offsite_detail})"
    )
