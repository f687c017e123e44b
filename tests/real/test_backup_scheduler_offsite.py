"""The backup-scheduler image with an off-host repository, on a real engine.

Two schedulers run side by side through the same minute: one pushes its scheduled dump to a
local-folder repository (mounted at its own path, as components/backup_scheduler.py does),
reads all of it back with `check --read-data-subset`, and passes the restore drill; the other
has a repository that was never initialised, so its push fails and it turns unhealthy at once.
Both serve what they recorded on /metrics, and the program's alert rules under promtool fire
OffsitePushFailed and RestoreDrillFailed on the broken one's page (not BackupOverdue: its local
dump is good) and nothing on the good one's.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from alerting_support import promtool_alerts_on, scheduler_metrics
from docker.models.containers import Container
from docker_harness import DockerScope, healthcheck, wait_health_status
from offsite_targets import PREFLIGHT, local_target, preflight_env
from services import build_scheduler, psql_exec, start_postgres


def status_of(scheduler: Container) -> dict:
    exit_code, output = scheduler.exec_run(["cat", "/var/lib/catalogizer-backup/status.json"])
    return json.loads(output) if exit_code == 0 else {}


def start_early_in_a_minute() -> None:
    """Both schedulers first run at the next full minute; the broken one must be seen healthy before
    that run fails its push. Started at :55 under load, its first run came before the check did
    (seen once with the Docker layers running side by side), so start in a minute's first half."""
    second = time.time() % 60
    if second > 25:
        time.sleep(61 - second)


def test_scheduled_push_check_and_drill_and_a_failed_push_is_unhealthy(
    docker_scope: DockerScope, tmp_path: Path
) -> None:
    image = build_scheduler(docker_scope)
    network = docker_scope.network()
    pg_password, repo_password = os.urandom(12).hex(), "repo-" + os.urandom(16).hex()
    pg = start_postgres(docker_scope, network, docker_scope.volume("pg-data"), pg_password)
    psql_exec(
        docker_scope, pg, "CREATE TABLE media AS SELECT g AS id, md5(g::text) AS title FROM generate_series(1, 800) g"
    )

    good = local_target(tmp_path / "good")
    assert good.run(PREFLIGHT, preflight_env(tmp_path / "good" / "backups", good, repo_password)).returncode == 0
    never_initialised = tmp_path / "bad" / "repository"
    never_initialised.mkdir(parents=True)

    def start(name: str, repository: str, backups: Path) -> Container:
        backups.mkdir(parents=True, exist_ok=True)
        return docker_scope.container(
            image,
            name,
            network=network,
            environment={
                "PGHOST": "postgres",
                "PGUSER": "catalogizer",
                "PGDATABASE": "catalogizer",
                "PGPASSWORD": pg_password,
                "BACKUP_DIR": "/backups",
                "BACKUP_KEEP": "3",
                "BACKUP_SCHEDULE": "* * * * *",
                "BACKUP_GRACE_SECONDS": "600",
                "STACK_NAME": "cztest",
                "RESTIC_REPOSITORY": repository,
                "RESTIC_PASSWORD": repo_password,
                "BACKUP_CHECK_READ_DATA": "100%",
                "DRILL_SCHEDULE": "* * * * *",
            },
            volumes={
                str(backups): {"bind": "/backups", "mode": "rw"},
                str(Path(repository)): {"bind": repository, "mode": "rw"},
            },
            healthcheck=healthcheck(["CMD", "python3", "/app/backup_scheduler.py", "--check"], interval=2, retries=1),
        )

    start_early_in_a_minute()
    ok = start("scheduler-ok", good.repository, tmp_path / "good" / "backups")
    broken = start("scheduler-broken", str(never_initialised), tmp_path / "bad" / "backups")
    wait_health_status(ok, "healthy", timeout=30)
    wait_health_status(broken, "healthy", timeout=30)

    deadline = time.monotonic() + 100
    while time.monotonic() < deadline and "lastDrillRecord" not in status_of(ok):
        time.sleep(1)
    status = status_of(ok)
    record = status.get("lastDrillRecord", {})
    assert record.get("ok") is True and status["lastDrillOk"] is True and status["lastOffsitePushOk"] is True, status
    assert record["snapshot"] == status["lastSnapshot"] and record["rows"] == 800
    snapshots = good.restic("snapshots", "--json", "--tag", "stack=cztest,kind=scheduled", password=repo_password)
    assert [s["short_id"] for s in json.loads(snapshots.stdout)] == [status["lastSnapshot"]]
    logs = ok.logs().decode()
    assert '"checked": "read 100% of the data"' in logs and '"event": "restore drill"' in logs
    wait_health_status(ok, "healthy", timeout=10)
    page = scheduler_metrics(docker_scope, ok)
    assert "catalogizer_backup_offsite_last_push_success 1\n" in page
    assert "catalogizer_restore_drill_last_success 1\n" in page and "catalogizer_backup_overdue 0\n" in page
    promtool_alerts_on(docker_scope, page, (), quiet=("OffsitePushFailed", "RestoreDrillFailed", "BackupOverdue"))

    # Its scheduled dump is fine locally, but the push fails: unhealthy now, not after the grace period.
    wait_health_status(broken, "unhealthy", timeout=30)
    broken.reload()
    last_check = broken.attrs["State"]["Health"]["Log"][-1]["Output"]
    assert "the last scheduled backup failed: restic backup on" in last_check
    assert list((tmp_path / "bad" / "backups").glob("cztest_*.dump"))
    # Its drill (same minute, after the push) fails as well: there is nothing to restore.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "lastDrillRecord" not in status_of(broken):
        time.sleep(1)
    status = status_of(broken)
    assert status["lastOffsitePushOk"] is False and status["lastSuccess"] > 0 and status["lastDrillOk"] is False, status
    page = scheduler_metrics(docker_scope, broken)
    assert "catalogizer_backup_offsite_last_push_success 0\n" in page and "catalogizer_backup_overdue 0\n" in page
    assert "catalogizer_restore_drill_last_success 0\n" in page
    promtool_alerts_on(docker_scope, page, ("OffsitePushFailed", "RestoreDrillFailed"), quiet=("BackupOverdue",))
    for container in (ok, broken):
        assert pg_password not in container.logs().decode() and repo_password not in container.logs().decode()
    assert repo_password not in last_check
