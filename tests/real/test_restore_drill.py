"""scripts/restore_drill.py against a real PostgreSQL and a real restic repository.

The drill restores the newest off-host snapshot into a scratch database and compares it with
the manifest taken with the dump. It must pass on a good copy, and fail on a damaged pack file
and on a dump whose row counts differ from its manifest; the live database is never touched.
The scheduler's health check and /metrics page read its record: a failed drill fires
RestoreDrillFailed under promtool with the program's rules.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from alerting_support import promtool_alerts_on
from docker.models.containers import Container
from docker_harness import DockerScope
from offsite_targets import BACKUP, DRILL, PREFLIGHT, Target, hook_env, local_target, preflight_env
from services import SCRIPTS, psql_exec, start_postgres

SCRATCH_EXISTS = "SELECT count(*) FROM pg_database WHERE datname = 'catalogizer_restore_drill'"


@pytest.fixture
def pushed(docker_scope: DockerScope, tmp_path: Path) -> tuple[Container, Target, dict[str, str], dict]:
    """A database with two tables, one verified dump of it pushed to a local repository."""
    pg_password, repo_password = "pg-" + os.urandom(12).hex(), "repo-" + os.urandom(16).hex()
    pg = start_postgres(docker_scope, docker_scope.network(), docker_scope.volume("pg-data"), pg_password)
    psql_exec(
        docker_scope,
        pg,
        "CREATE TABLE media (id serial PRIMARY KEY, title text, seen timestamptz DEFAULT now());"
        "INSERT INTO media (title) SELECT 'title ' || g FROM generate_series(1, 2000) g;"
        "CREATE TABLE tags (name text); INSERT INTO tags SELECT 'tag ' || g FROM generate_series(1, 40) g;",
    )
    target = local_target(tmp_path)
    backups = tmp_path / "backups"
    assert target.run(PREFLIGHT, preflight_env(backups, target, repo_password)).returncode == 0
    env = hook_env(pg, pg_password, backups, target, repo_password, BACKUP_KIND="scheduled")
    result = target.run(BACKUP, env)
    assert result.returncode == 0, result.stderr
    return pg, target, env, json.loads(result.stdout)


def drill(target: Target, env: dict[str, str]) -> tuple[int, dict, str]:
    result = target.run(DRILL, env)
    for secret in (env["PGPASSWORD"], env["RESTIC_PASSWORD"]):
        assert secret not in result.stdout + result.stderr + target.argv_log.read_text()
    record = json.loads((Path(env["BACKUP_DIR"]) / "cztest_restore-drill.json").read_text())
    return result.returncode, record, result.stderr


def scheduler_page(target: Target, env: dict[str, str]) -> str:
    """The scheduler's /metrics page (`--metrics`) from the same status file and drill record."""
    status = Path(env["BACKUP_DIR"]) / "scheduler-status.json"
    status.write_text(json.dumps({"started": time.time()}))
    page_env = {**env, "BACKUP_SCHEDULE": "0 2 * * *", "BACKUP_STATUS_FILE": str(status)}
    result = target.run(SCRIPTS / "backup_scheduler.py", page_env, "--metrics")
    assert result.returncode == 0, result.stderr
    return result.stdout


def scheduler_health(target: Target, env: dict[str, str]) -> tuple[int, str]:
    """The scheduler's health check (`--check`) reading the drill record in the backup folder."""
    status = Path(env["BACKUP_DIR"]) / "scheduler-status.json"
    status.write_text(json.dumps({"started": time.time()}))
    health_env = {**env, "BACKUP_SCHEDULE": "0 2 * * *", "BACKUP_STATUS_FILE": str(status)}
    result = target.run(SCRIPTS / "backup_scheduler.py", health_env, "--check")
    return result.returncode, result.stdout


def test_a_good_copy_passes_a_forged_manifest_and_a_damaged_pack_fail(
    docker_scope: DockerScope, pushed: tuple[Container, Target, dict[str, str], dict], tmp_path: Path
) -> None:
    # One database and repository for the three cases (each a real restore), damage last.
    pg, target, env, summary = pushed

    # 1. The copy just pushed restores and matches; the live database is untouched.
    code, record, stderr = drill(target, env)
    assert code == 0, stderr
    assert record["ok"] is True and record["snapshot"] == summary["snapshot"] and record["kind"] == "scheduled"
    assert record["tables"] == 2 and record["rows"] == 2040 and record["differences"] == []
    assert psql_exec(docker_scope, pg, SCRATCH_EXISTS) == "0"
    assert psql_exec(docker_scope, pg, "SELECT count(*) FROM media") == "2000"
    assert not list(Path(env["BACKUP_DIR"]).glob(".drill-*"))
    assert scheduler_health(target, env) == (0, "last dump none yet\n")
    assert "catalogizer_restore_drill_last_success 1\n" in scheduler_page(target, env)

    # 2. The same dump pushed again with a manifest that promised one more row than it holds.
    forged = tmp_path / "forged"
    forged.mkdir()
    dump = Path(summary["file"])
    for suffix in ("", ".sha256", ".manifest.json"):
        shutil.copy(dump.with_name(dump.name + suffix), forged)
    manifest_file = forged / (dump.name + ".manifest.json")
    manifest = json.loads(manifest_file.read_text())
    manifest["tables"]["public.media"]["rows"] += 1
    manifest_file.write_text(json.dumps(manifest))
    names = [p.name for p in forged.iterdir()]
    backed_up = target.restic(
        "backup", "--host", "cztest", "--tag", "stack=cztest,kind=scheduled", *names, password=env["RESTIC_PASSWORD"],
        cwd=forged,
    )  # fmt: skip
    assert backed_up.returncode == 0, backed_up.stderr
    code, record, stderr = drill(target, env)
    assert code == 1 and record["ok"] is False
    assert record["differences"] == ["public.media: 2000 rows restored, 2001 when dumped"]
    assert "public.media: 2000 rows restored, 2001 when dumped" in stderr
    assert psql_exec(docker_scope, pg, SCRATCH_EXISTS) == "0"

    # 3. A damaged pack file (the largest: the dump's data) fails the restore itself.
    packs = [p for p in (Path(target.repository) / "data").rglob("*") if p.is_file()]
    largest = max(packs, key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    largest.chmod(0o600)  # restic writes packs read-only
    largest.write_bytes(bytes(data))
    code, record, stderr = drill(target, env)
    assert code == 1 and record["ok"] is False
    assert "restore drill failed: restic dump" in stderr and record["error"].startswith("restic dump")
    assert psql_exec(docker_scope, pg, SCRATCH_EXISTS) == "0"
    # The scheduler reads the same record: unhealthy, naming the snapshot and the error.
    code, message = scheduler_health(target, env)
    assert code == 1 and message.startswith(f"the restore drill of snapshot {record['snapshot']} failed: restic dump")
    # ... and serves the value RestoreDrillFailed fires on, which promtool confirms with the rendered rules.
    page = scheduler_page(target, env)
    assert "catalogizer_restore_drill_last_success 0\n" in page
    promtool_alerts_on(docker_scope, page, ("RestoreDrillFailed",), quiet=("BackupOverdue", "OffsitePushFailed"))
