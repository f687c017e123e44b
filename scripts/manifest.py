"""Per-table row counts and content checksums of a database, taken at the moment of a dump.

The off-host copies carry this manifest beside the dump, so a restore drill can prove that
what comes back is what was there: same tables, same row counts, same row contents.

The dump and the manifest see the same data: a psql session opens a REPEATABLE READ
transaction and exports its snapshot (PostgreSQL docs, "Snapshot Synchronization Functions",
pg_export_snapshot); pg_dump imports it with --snapshot (pg_dump docs), and the manifest
queries run inside the exporting transaction, concurrently with the dump.
"""

from __future__ import annotations

import json
import subprocess
import threading
from typing import TYPE_CHECKING

from hooklib import HookError, scrub

if TYPE_CHECKING:
    from backup import Database

END = "__catalogizer_manifest_end__"
TABLES_SQL = (
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1;"
)
# Order-independent and streaming: the sum (numeric, so it cannot overflow) of a 60-bit slice of
# each row's md5. A changed, missing or extra row changes it; no table is held in memory.
TABLE_SQL = "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0) FROM {table} t;"


class Session:
    """One psql process fed statements on stdin; each answer is read up to an echoed marker."""

    def __init__(self, db: Database, dbname: str | None = None) -> None:
        self.process = subprocess.Popen(
            db.argv(
                "psql",
                "--no-psqlrc",
                "--quiet",
                "--no-align",
                "--tuples-only",
                "--set",
                "ON_ERROR_STOP=1",
                "--username",
                db.user,
                "--dbname",
                dbname or db.name,
                stdin=True,
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def query(self, sql: str) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(f"{sql}\n\\echo {END}\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # psql already exited; the read below reports why
        lines = []
        while (line := self.process.stdout.readline()) != "":
            if line.rstrip("\n") == END:
                return lines
            lines.append(line.rstrip("\n"))
        raise HookError(f"psql stopped while taking the manifest: {self.error()}")

    def error(self) -> str:
        assert self.process.stderr is not None
        self.process.kill()
        self.process.wait()
        return scrub(self.process.stderr.read()).strip() or f"exit {self.process.returncode}"

    def close(self) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write("COMMIT;\n\\q\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def table_manifest(session: Session) -> dict[str, dict[str, object]]:
    tables: dict[str, dict[str, object]] = {}
    for table in session.query(TABLES_SQL):
        if not table:
            continue
        (row,) = session.query(TABLE_SQL.format(table=table))
        count, checksum = row.split("|")
        tables[table] = {"rows": int(count), "checksum": checksum}
    return tables


class ExportedSnapshot:
    """A transaction whose snapshot pg_dump imports, and a manifest computed in it meanwhile."""

    def __init__(self, db: Database) -> None:
        self.session = Session(db)
        lines = self.session.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot();")
        self.snapshot = lines[-1].strip()
        self.tables: dict[str, dict[str, object]] | None = None
        self.failure: HookError | None = None
        self._thread = threading.Thread(target=self._collect, daemon=True)

    def _collect(self) -> None:
        try:
            self.tables = table_manifest(self.session)
        except HookError as exc:
            self.failure = exc

    def start(self) -> None:
        """Called once pg_dump runs: it imports the snapshot at its start, while we still hold it."""
        self._thread.start()

    def finish(self) -> dict[str, dict[str, object]]:
        self._thread.join()
        self.session.close()
        if self.failure is not None or self.tables is None:
            raise self.failure or HookError("the manifest was not taken")
        return self.tables

    def abort(self) -> None:
        if self._thread.is_alive():
            self.session.process.kill()
            self._thread.join()
        self.session.process.kill()
        self.session.process.wait()


def compare(expected: dict[str, dict[str, object]], actual: dict[str, dict[str, object]]) -> list[str]:
    """Every difference, one line each; empty when the restored data is the dumped data."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want is None:
            problems.append(f"{table}: restored but not in the manifest")
        elif got is None:
            problems.append(f"{table}: in the manifest but not restored")
        elif want["rows"] != got["rows"]:
            problems.append(f"{table}: {got['rows']} rows restored, {want['rows']} when dumped")
        elif want["checksum"] != got["checksum"]:
            problems.append(f"{table}: same {got['rows']} rows but different contents (checksum)")
    return problems


def dumps(manifest: dict[str, object]) -> bytes:
    return (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode()
