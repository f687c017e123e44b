"""The backup-scheduler image on a real engine: a one-minute schedule dumps, verifies, prunes,
and its health check turns unhealthy once dumps stop."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

from docker_harness import DockerScope, healthcheck, wait_health_status
from services import build_scheduler, psql_exec, start_postgres


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_one_minute_schedule_dumps_prunes_and_reports_overdue(docker_scope: DockerScope, tmp_path: Path) -> None:
    image = build_scheduler(docker_scope)
    network = docker_scope.network()
    password = os.urandom(12).hex()
    pg = start_postgres(docker_scope, network, docker_scope.volume("pg-data"), password)
    psql_exec(docker_scope, pg, "CREATE TABLE media AS SELECT g AS id FROM generate_series(1, 1000) g")
    backups = tmp_path / "backups"
    backups.mkdir()
    stale = backups / "cztest_20200101T000000000Z.dump"
    stale.write_bytes(b"PGDMP old")
    (backups / (stale.name + ".sha256")).write_text("0" * 64 + "  old\n")

    scheduler = docker_scope.container(
        image,
        "scheduler",
        network=network,
        environment={
            "PGHOST": "postgres",
            "PGUSER": "catalogizer",
            "PGDATABASE": "catalogizer",
            "PGPASSWORD": password,
            "BACKUP_DIR": "/backups",
            "BACKUP_KEEP": "1",
            "BACKUP_SCHEDULE": "* * * * *",
            "BACKUP_GRACE_SECONDS": "5",
            "STACK_NAME": "cztest",
        },
        volumes={str(backups): {"bind": "/backups", "mode": "rw"}},
        healthcheck=healthcheck(["CMD", "python3", "/app/backup_scheduler.py", "--check"], interval=2, retries=1),
    )
    wait_health_status(scheduler, "healthy", timeout=30)

    wait_for(lambda: not stale.exists(), 75, "the first scheduled dump and retention")
    (dump,) = backups.glob("cztest_*.dump")
    assert (backups / (dump.name + ".sha256")).read_text().split()[0] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert sorted(p.name for p in backups.iterdir()) == [dump.name, dump.name + ".sha256"]
    with dump.open("rb") as handle:
        listing = subprocess.run(
            ["docker", "exec", "-i", pg.name, "pg_restore", "--list"], stdin=handle, capture_output=True, check=False
        )
    assert listing.returncode == 0 and b"TABLE public media" in listing.stdout
    logs = scheduler.logs().decode()
    assert '"event": "backup"' in logs and password not in logs

    pg.stop(timeout=30)
    wait_health_status(scheduler, "unhealthy", timeout=75)
    scheduler.reload()
    last_check = scheduler.attrs["State"]["Health"]["Log"][-1]["Output"]
    assert "has not succeeded" in last_check and "last error:" in last_check
    assert password not in scheduler.logs().decode() + last_check
