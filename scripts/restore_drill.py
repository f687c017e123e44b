#!/usr/bin/env python3
"""Restore drill: proves the newest off-host copy restores, into a scratch database.

Run by the backup scheduler on catalogizer:backup.drillSchedule and by hand:

    PG_CONTAINER=catalogizer-postgres PGUSER=catalogizer PGDATABASE=catalogizer PGPASSWORD=... \
    BACKUP_DIR=/opt/catalogizer/backups STACK_NAME=catalogizer RESTIC_REPOSITORY=... \
    RESTIC_PASSWORD=... python3 scripts/restore_drill.py [snapshot id]

Steps: fetch the stack's newest snapshot (or the one named) and check the dump against the
sha256 pushed with it; restore it with pg_restore into the scratch database
`<PGDATABASE>_restore_drill` on the same server (never the live one: it is dropped and created
by name, and a name equal to the live database is refused); count and checksum every table
there exactly as the manifest did when the dump was taken; compare; drop the scratch database.
The record goes to BACKUP_DIR/<stack>_restore-drill.json and stdout (one JSON object); the exit
status is 1 when the restore failed or anything differs.

In swarm mode (PG_SERVICE instead of PG_CONTAINER; DOCKER_HOST is the data node's engine) the
scratch database is made on PostgreSQL's task there, found as scripts/backup.py finds it.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backup import MANIFEST_SUFFIX, Database, safe_stack_name, write_atomically
from hooklib import HookError, emit, env, fail, scrub, use_service_container
from manifest import Session, compare, table_manifest
from offsite import Repository

SCRATCH_SUFFIX = "_restore_drill"
RECORD_SUFFIX = "_restore-drill.json"


def admin(db: Database, sql: str) -> None:
    """Runs one statement against the maintenance database `postgres` (CREATE/DROP DATABASE)."""
    result = subprocess.run(
        db.argv(
            "psql",
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--username",
            db.user,
            "--dbname",
            "postgres",
            "--command",
            sql,
        ),
        capture_output=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise HookError(f"{sql.split()[0]} on the scratch database failed: {scrub(result.stderr.decode()).strip()}")


def restore_into(db: Database, scratch: str, dump: Path) -> None:
    """pg_restore into the scratch database, all or nothing (--single-transaction, --exit-on-error)."""
    with dump.open("rb") as handle:
        result = subprocess.run(
            db.argv(
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--username",
                db.user,
                "--dbname",
                scratch,
                stdin=True,
            ),
            stdin=handle,
            capture_output=True,
            timeout=6 * 3600,
            check=False,
        )
    if result.returncode != 0:
        raise HookError(f"pg_restore of {dump.name} failed: {scrub(result.stderr.decode(errors='replace')).strip()}")


def drill(db: Database, repository: Repository, directory: Path, wanted: str = "latest") -> dict[str, object]:
    """One drill; the record says ok (true/false), what was compared and every difference."""
    started = time.monotonic()
    scratch = f"{db.name}{SCRATCH_SUFFIX}"
    if scratch == db.name:  # cannot happen with the suffix; kept because the live data is at stake
        raise HookError("the scratch database would be the live one")
    record: dict[str, object] = {"ok": False, "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    workdir = directory / f".drill-{repository.stack}"
    try:
        snapshot = repository.resolve(wanted)
        record.update(snapshot=snapshot.id, snapshotTime=snapshot.time, kind=snapshot.kind)
        shutil.rmtree(workdir, ignore_errors=True)
        dump = repository.fetch(snapshot, workdir)
        manifest_file = dump.with_name(dump.name + MANIFEST_SUFFIX)
        if not manifest_file.exists():
            raise HookError(f"snapshot {snapshot.id} has no manifest to compare with")
        expected = json.loads(manifest_file.read_text())["tables"]
        admin(db, f'DROP DATABASE IF EXISTS "{scratch}"')
        admin(db, f'CREATE DATABASE "{scratch}"')
        try:
            restore_into(db, scratch, dump)
            session = Session(db, scratch)
            try:
                actual = table_manifest(session)
            finally:
                session.close()
        finally:
            admin(db, f'DROP DATABASE IF EXISTS "{scratch}"')
        problems = compare(expected, actual)
        rows = sum(int(t["rows"]) for t in actual.values())  # type: ignore[call-overload]
        record.update(ok=not problems, dump=dump.name, tables=len(actual), rows=rows, differences=problems)
    except HookError as exc:
        record["error"] = scrub(str(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record["seconds"] = round(time.monotonic() - started, 3)
    write_atomically(directory / f"{repository.stack}{RECORD_SUFFIX}", json.dumps(record).encode())
    return record


def main() -> None:
    try:
        stack = safe_stack_name(env("STACK_NAME"))
        directory = Path(env("BACKUP_DIR"))
        repository = Repository.from_env(stack, directory)
        if repository is None:
            raise HookError("RESTIC_REPOSITORY is required: the drill restores the off-host copy")
        use_service_container()  # swarm mode: PG_SERVICE's task container on the data node (DOCKER_HOST)
        record = drill(Database.from_env(), repository, directory, (sys.argv[1:] or ["latest"])[0])
    except HookError as exc:
        fail(f"restore drill failed: {exc}")
    emit(record)
    if not record["ok"]:
        fail(f"restore drill failed: {record.get('error') or '; '.join(record.get('differences') or [])}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
