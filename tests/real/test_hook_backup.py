"""scripts/backup.py and scripts/restore.py against real PostgreSQL containers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from docker.models.containers import Container
from docker_harness import DockerScope
from images import tags
from services import PG_DB, PG_USER, SCRIPTS, psql_exec, run_hook, start_postgres

BACKUP = SCRIPTS / "backup.py"
RESTORE = SCRIPTS / "restore.py"


def db_env(pg: Container, password: str, backup_dir: Path, keep: int = 10) -> dict[str, str]:
    return {
        "PG_CONTAINER": pg.name,
        "PGUSER": PG_USER,
        "PGDATABASE": PG_DB,
        "PGPASSWORD": password,
        "BACKUP_DIR": str(backup_dir),
        "BACKUP_KEEP": str(keep),
        "STACK_NAME": "cztest",
    }


def assert_no_secret(password: str, *outputs: str) -> None:
    for output in outputs:
        assert password not in output


@pytest.fixture
def database(docker_scope: DockerScope) -> tuple[Container, str]:
    password = "pg-" + os.urandom(12).hex()
    pg = start_postgres(docker_scope, docker_scope.network(), docker_scope.volume("pg-data"), password)
    psql_exec(
        docker_scope,
        pg,
        "CREATE TABLE media (id serial PRIMARY KEY, title text NOT NULL, size bigint);"
        "INSERT INTO media (title, size) SELECT 'title ' || g, g * 1024 FROM generate_series(1, 5000) g;",
    )
    return pg, password


def test_backup_writes_a_verified_checksummed_dump(database: tuple[Container, str], tmp_path: Path) -> None:
    pg, password = database
    backup_dir = tmp_path / "backups"
    result = run_hook(BACKUP, db_env(pg, password, backup_dir))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    dump = Path(summary["file"])
    assert dump.parent == backup_dir.resolve() and dump.name.startswith("cztest_") and dump.suffix == ".dump"
    assert summary["bytes"] == dump.stat().st_size > 0
    assert summary["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert (dump.parent / (dump.name + ".sha256")).read_text().split()[0] == summary["sha256"]
    assert dump.stat().st_mode & 0o777 == 0o600
    assert dump.read_bytes().startswith(b"PGDMP")
    assert not list(backup_dir.glob(".*"))  # no temporary file left behind
    assert_no_secret(password, result.stdout, result.stderr)


def test_backup_of_an_empty_database(docker_scope: DockerScope, tmp_path: Path) -> None:
    password = "pg-" + os.urandom(12).hex()
    pg = start_postgres(docker_scope, docker_scope.network(), docker_scope.volume("pg-empty"), password)
    result = run_hook(BACKUP, db_env(pg, password, tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["bytes"] > 0


def test_backup_then_restore_into_a_fresh_database(
    docker_scope: DockerScope, database: tuple[Container, str], tmp_path: Path
) -> None:
    pg, password = database
    before = psql_exec(
        docker_scope, pg, "SELECT count(*), sum(size), md5(string_agg(title, ',' ORDER BY id)) FROM media"
    )
    backup = run_hook(BACKUP, db_env(pg, password, tmp_path))
    assert backup.returncode == 0, backup.stderr
    dump = json.loads(backup.stdout)["file"]

    fresh_password = "pg-" + os.urandom(12).hex()
    fresh = start_postgres(
        docker_scope, docker_scope.network("net2"), docker_scope.volume("pg-fresh"), fresh_password, "fresh"
    )
    # A table that only the newer schema had must be gone after the rollback restore.
    psql_exec(
        docker_scope,
        fresh,
        "CREATE TABLE added_by_new_migration (id int); INSERT INTO added_by_new_migration VALUES (1);",
    )
    env = {**db_env(fresh, fresh_password, tmp_path / "safety"), "RESTORE_FILE": dump, "API_STACK_LABEL": "cztest-none"}
    restored = run_hook(RESTORE, env)
    assert restored.returncode == 0, restored.stderr
    summary = json.loads(restored.stdout)
    assert summary["restored"] == dump and Path(summary["safetyDump"]).is_file()
    after = psql_exec(
        docker_scope, fresh, "SELECT count(*), sum(size), md5(string_agg(title, ',' ORDER BY id)) FROM media"
    )
    assert after == before
    assert psql_exec(docker_scope, fresh, "SELECT to_regclass('public.added_by_new_migration') IS NULL") == "t"
    assert_no_secret(password, restored.stdout, restored.stderr)
    assert_no_secret(fresh_password, restored.stdout, restored.stderr)


def test_backup_against_a_stopped_database_fails_and_leaves_no_file(
    docker_scope: DockerScope, database: tuple[Container, str], tmp_path: Path
) -> None:
    pg, password = database
    pg.stop(timeout=30)
    result = run_hook(BACKUP, db_env(pg, password, tmp_path))
    assert result.returncode == 1
    assert "backup failed: PostgreSQL is not reachable" in result.stderr and "exited" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert result.stdout == ""
    assert_no_secret(password, result.stderr)


def test_backup_with_a_wrong_database_fails_with_pg_dump_message(
    database: tuple[Container, str], tmp_path: Path
) -> None:
    pg, password = database
    result = run_hook(BACKUP, {**db_env(pg, password, tmp_path), "PGDATABASE": "no_such_db"})
    assert result.returncode == 1
    assert "pg_dump of no_such_db" in result.stderr and "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_backup_on_a_full_disk_fails_and_leaves_no_file(database: tuple[Container, str], tmp_path: Path) -> None:
    pg, password = database
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(full)], check=True)
    try:
        result = run_hook(BACKUP, db_env(pg, password, full))
        assert result.returncode == 1
        assert "No space left on device" in result.stderr
        assert list(full.iterdir()) == []
    finally:
        subprocess.run(["umount", str(full)], check=True)


def test_retention_keeps_exactly_keep_dumps(database: tuple[Container, str], tmp_path: Path) -> None:
    pg, password = database
    other_stack = tmp_path / "otherstack_20200101T000000000Z.dump"
    other_stack.write_bytes(b"PGDMP")
    names = []
    for _ in range(5):
        result = run_hook(BACKUP, db_env(pg, password, tmp_path, keep=3))
        assert result.returncode == 0, result.stderr
        names.append(Path(json.loads(result.stdout)["file"]).name)
    kept = sorted(p.name for p in tmp_path.glob("cztest_*.dump"))
    assert kept == sorted(names[-3:])
    assert sorted(p.name for p in tmp_path.glob("cztest_*.dump.sha256")) == [n + ".sha256" for n in kept]
    assert other_stack.exists()  # another stack's dumps are not ours to prune


def test_restore_refuses_a_truncated_dump(
    database: tuple[Container, str], tmp_path: Path, docker_scope: DockerScope
) -> None:
    pg, password = database
    result = run_hook(BACKUP, db_env(pg, password, tmp_path))
    dump = Path(json.loads(result.stdout)["file"])
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    before = psql_exec(docker_scope, pg, "SELECT count(*) FROM media")
    env = {**db_env(pg, password, tmp_path), "RESTORE_FILE": str(dump), "API_STACK_LABEL": "cztest-none"}
    restored = run_hook(RESTORE, env)
    assert restored.returncode == 1
    assert "restore failed" in restored.stderr and "does not match its sha256" in restored.stderr
    assert psql_exec(docker_scope, pg, "SELECT count(*) FROM media") == before
    assert len(list(tmp_path.glob("cztest_*.dump"))) == 1  # no safety dump: nothing was changed


def test_restore_of_an_unreadable_dump_with_valid_checksum_changes_nothing(
    database: tuple[Container, str], tmp_path: Path, docker_scope: DockerScope
) -> None:
    pg, password = database
    bogus = tmp_path / "bogus.dump"
    bogus.write_bytes(b"this is not a pg_dump archive")
    (tmp_path / "bogus.dump.sha256").write_text(hashlib.sha256(bogus.read_bytes()).hexdigest() + "  bogus.dump\n")
    env = {**db_env(pg, password, tmp_path), "RESTORE_FILE": str(bogus), "API_STACK_LABEL": "cztest-none"}
    restored = run_hook(RESTORE, env)
    assert restored.returncode == 1 and "pg_restore cannot read bogus.dump" in restored.stderr
    assert psql_exec(docker_scope, pg, "SELECT count(*) FROM media") == "5000"


def test_a_restore_that_fails_in_its_replay_starts_the_stopped_api_again(
    database: tuple[Container, str], tmp_path: Path, docker_scope: DockerScope
) -> None:
    pg, password = database
    # A schema of its own is re-created by the replay, which fails while the live one exists.
    psql_exec(docker_scope, pg, "CREATE SCHEMA extra; CREATE TABLE extra.t (id int);")
    backup = run_hook(BACKUP, db_env(pg, password, tmp_path))
    assert backup.returncode == 0, backup.stderr
    stack = docker_scope.name("restore-api")
    api = docker_scope.container(
        tags.REDIS, "api", labels={"catalogizer.stack": stack, "catalogizer.role": "api"}, command=["sleep", "600"]
    )
    env = {
        **db_env(pg, password, tmp_path),
        "RESTORE_FILE": json.loads(backup.stdout)["file"],
        "API_STACK_LABEL": stack,
    }
    restored = run_hook(RESTORE, env)
    assert restored.returncode == 1
    assert "was rolled back" in restored.stderr and 'schema "extra" already exists' in restored.stderr
    assert "the 1 stopped API container(s) were started again" in restored.stderr
    api.reload()
    assert api.status == "running"
    assert psql_exec(docker_scope, pg, "SELECT count(*) FROM media") == "5000"
    assert_no_secret(password, restored.stdout, restored.stderr)


def test_keep_record_restores_nothing_and_repeats_the_last_record(tmp_path: Path) -> None:
    record = {"restored": "/b/x.dump", "sha256": "ab", "safetyDump": "/b/y.dump", "seconds": 1.5}
    # No database settings at all: the update path must not need (or touch) the database.
    result = subprocess.run(
        ["python3", str(RESTORE), "--keep-record"],
        env={"PATH": os.environ["PATH"], "PULUMI_COMMAND_STDOUT": json.dumps(record) + "\n"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == record
