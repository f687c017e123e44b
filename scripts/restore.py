#!/usr/bin/env python3
"""Restore for rollback: replace the Catalogizer database with a verified dump.

Run by `pulumi up` when `catalogizer:restoreFrom` is set or changed, before the API
containers are recreated. Steps, each of which stops the run on failure:
1. the dump matches the sha256 written beside it and pg_restore can read it;
2. a safety dump of the current database is taken (same naming and retention as backups);
3. this stack's API containers are stopped, so nothing writes during the restore;
4. the schema is dropped and the dump replayed in ONE transaction: a failure leaves
   the database exactly as it was.
With NGINX_VOLUME and NGINX_IMAGE set, nginx answers the maintenance page (503 with
Retry-After) from just before step 3 until the proxy hook switches traffic to the API
containers that replace the stopped ones. If the restore fails after step 3, the API
containers it stopped are started again and the page is taken down (the database is
unchanged). On success they stay stopped: the program replaces them next, and
starting the newer version they run against the restored data would re-apply its migrations.
stdout is one JSON object: restored file, its sha256, the safety dump, seconds.

With RESTORE_SNAPSHOT (`latest` or a snapshot id, from `restoreFrom: restic:...`) the dump is
first fetched from the off-host restic repository into BACKUP_DIR and checked against the
sha256 pushed with it; `latest` skips RESTORE_EXCLUDE_SNAPSHOT, the dump this same `pulumi up`
pushed a moment ago of the database about to be replaced. Then the same steps 1-4 follow.

In swarm mode (PG_SERVICE and API_SERVICE set; DOCKER_HOST is the data node's engine) the same
steps run against PostgreSQL's task on the data node, and step 3 scales the API service to 0
through the manager instead and waits until none of its tasks runs (scripts/swarm_api.py); a
failure before the replay scales it back. There is no maintenance page in swarm mode.

`--keep-record` (pulumi-command's `update`) restores nothing: it repeats the previous run's
record from PULUMI_COMMAND_STDOUT, so an unrelated input change never replays a dump.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backup import CHECKSUM_SUFFIX, CHUNK, Database, apply_retention, safe_stack_name, take_backup, verify_dump
from hooklib import HookError, docker, emit, env, env_int, fail, scrub, use_service_container
from proxy_config import set_maintenance
from swarm_api import scale_back, scale_to_zero

# Tables added by a newer migration must go too, which `pg_restore --clean` alone would keep.
PROLOGUE = b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public AUTHORIZATION pg_database_owner;\n"


def check_file(path: Path) -> str:
    sidecar = path.with_name(path.name + CHECKSUM_SUFFIX)
    if not path.is_file():
        raise HookError(f"{path} does not exist")
    try:
        expected = sidecar.read_text().split()[0].lower()
    except (OSError, IndexError):
        raise HookError(f"{sidecar} is missing or empty; restore only dumps written by the backup hook") from None
    with path.open("rb") as handle:
        actual = hashlib.file_digest(handle, "sha256").hexdigest()
    if actual != expected:
        raise HookError(f"{path} does not match its sha256 ({actual} != {expected}): corrupt or truncated")
    return actual


def stop_api_containers(stack_label: str) -> list[str]:
    listed = docker(
        ["ps", "-q", "--filter", f"label=catalogizer.stack={stack_label}", "--filter", "label=catalogizer.role=api"],
        timeout=30,
    )
    if listed.returncode != 0:
        raise HookError(f"cannot list API containers: {scrub(listed.stderr.decode(errors='replace')).strip()}")
    ids = listed.stdout.decode().split()
    if ids:
        stopped = docker(["stop", "--time", "30", "--", *ids], timeout=120)
        if stopped.returncode != 0:
            raise HookError(f"cannot stop API containers: {scrub(stopped.stderr.decode(errors='replace')).strip()}")
    return ids


def start_containers(ids: list[str]) -> str:
    """Starts what stop_api_containers stopped; returns a note on what could not be started."""
    if not ids:
        return ""
    started = docker(["start", "--", *ids], timeout=120)
    if started.returncode != 0:
        return f"; could not start the stopped API containers again: {scrub(started.stderr.decode()).strip()}"
    return f"; the {len(ids)} stopped API container(s) were started again"


def keep_record() -> None:
    previous = os.environ.get("PULUMI_COMMAND_STDOUT", "").strip().splitlines()
    try:
        record = json.loads(previous[-1]) if previous else {}
    except json.JSONDecodeError:
        record = {}
    emit(record if isinstance(record, dict) else {})


def replay(db: Database, path: Path) -> None:
    """pg_restore turns the dump into SQL; psql applies it with the prologue as one transaction."""
    psql = subprocess.Popen(
        [
            *db.argv(
                "psql",
                "--quiet",
                "--no-psqlrc",
                "--single-transaction",
                "--set",
                "ON_ERROR_STOP=1",
                "--username",
                db.user,
                "--dbname",
                db.name,
                "--output",
                "/dev/null",
                stdin=True,
            ),
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert psql.stdin is not None and psql.stderr is not None
    with path.open("rb") as dump:
        to_sql = subprocess.Popen(
            db.argv("pg_restore", "--no-owner", "--no-privileges", "--file", "-", stdin=True),
            stdin=dump,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert to_sql.stdout is not None and to_sql.stderr is not None
        try:
            psql.stdin.write(PROLOGUE)
            while chunk := to_sql.stdout.read(CHUNK):
                psql.stdin.write(chunk)
        except BrokenPipeError:
            pass  # psql stopped early; its exit status and stderr say why.
        finally:
            to_sql.stdout.close()
            restore_err = to_sql.stderr.read().decode(errors="replace")
            restore_code = to_sql.wait()
            with contextlib.suppress(BrokenPipeError):
                psql.stdin.close()
            psql_err = psql.stderr.read().decode(errors="replace")
            psql_code = psql.wait()
    if restore_code != 0:
        raise HookError(f"pg_restore could not read {path.name} (exit {restore_code}): {scrub(restore_err).strip()}")
    if psql_code != 0:
        raise HookError(
            f"replaying {path.name} failed and was rolled back (exit {psql_code}): {scrub(psql_err).strip()}"
        )


def fetch_snapshot(stack: str, directory: Path, wanted: str) -> Path:
    """The off-host dump, written under BACKUP_DIR/restored/<snapshot>/ and checked against its sha256."""
    from offsite import Repository

    repository = Repository.from_env(stack, directory)
    if repository is None:
        raise HookError("RESTORE_SNAPSHOT is set but RESTIC_REPOSITORY is not")
    exclude = tuple(os.environ.get("RESTORE_EXCLUDE_SNAPSHOT", "").split(","))
    snapshot = repository.resolve(wanted, exclude)
    # Outside the stack's dump names, so local retention never deletes it under the restore.
    return repository.fetch(snapshot, directory / "restored" / snapshot.id)


def main() -> None:
    if sys.argv[1:] == ["--keep-record"]:
        keep_record()
        return
    started = time.monotonic()
    stopped: list[str] = []
    # Swarm mode: the API service's name, and the replicas it had before it was scaled to 0.
    api_service = os.environ.get("API_SERVICE") or None
    api_replicas: int | None = None
    replayed = proxied = False
    try:
        stack = safe_stack_name(env("STACK_NAME"))
        directory = Path(env("BACKUP_DIR"))
        keep = env_int("BACKUP_KEEP", 10)
        use_service_container()  # swarm mode: PG_SERVICE's task container on the data node
        db = Database.from_env()
        snapshot = os.environ.get("RESTORE_SNAPSHOT") or None
        source = fetch_snapshot(stack, directory, snapshot) if snapshot else Path(env("RESTORE_FILE"))
        sha256 = check_file(source)
        verify_dump(db, source)
        safety = take_backup(db, directory, stack)
        proxied = bool(os.environ.get("NGINX_VOLUME"))
        if proxied:
            set_maintenance("on")
        if api_service is not None:
            api_replicas = scale_to_zero(api_service)
        else:
            stopped = stop_api_containers(env("API_STACK_LABEL"))
        replay(db, source)
        replayed = True
        apply_retention(directory, stack, keep, spare=(source,))
    except HookError as exc:
        # After a replay the data is the dump's: see the module docstring for why nothing restarts.
        note = ""
        if not replayed:
            note = scale_back(api_service, api_replicas) if api_service else start_containers(stopped)
        if proxied and not replayed:
            try:
                set_maintenance("off")
            except HookError as flag_error:
                note += f"; {flag_error}"
        fail(f"restore failed: {exc}{note}")
    emit(
        {
            **({"snapshot": source.parent.name} if snapshot else {}),
            "restored": str(source.resolve()),
            "sha256": sha256,
            "safetyDump": str(safety.file),
            **(
                {"apiService": api_service, "apiReplicasStopped": api_replicas or 0}
                if api_service
                else {"stoppedApiContainers": len(stopped)}
            ),
            "seconds": round(time.monotonic() - started, 3),
        }
    )


if __name__ == "__main__":
    main()
