#!/usr/bin/env python3
"""Benchmark: the backup hook against a plain `pg_dump` of the same database to the same disk.

Fills a PostgreSQL container (the locally built test image) with about TARGET_MB of rows,
then times, in one run: a warm-up dump (discarded), then interleaved rounds of a plain
`docker exec pg_dump -Fc > file`, scripts/backup.py (stream + sha256 + fsync +
pg_restore --list verification + rename) and scripts/backup.py with an off-host push to a
local restic repository (issue 11: + the manifest in the dump's snapshot, restic backup,
forget --prune and check).
Prints each round and the ratios of the best times: hook/plain (goal at most 1.15) and
hook with push/plain (goal at most 1.5).

    python3 benchmarks/backup_overhead.py [--target-mb 1024] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from docker_harness import DockerScope, docker_client  # noqa: E402
from images.ensure import ensure_images  # noqa: E402
from services import PG_DB, PG_USER, SCRIPTS, psql_exec, run_hook, start_postgres  # noqa: E402

ROW_BYTES = 200


def fill(scope: DockerScope, pg: object, target_mb: int) -> str:
    rows = target_mb * 1024 * 1024 // ROW_BYTES
    batch = 1_000_000
    psql_exec(
        scope, pg, "CREATE TABLE media (id bigserial PRIMARY KEY, path text, title text, size bigint, seen timestamptz)"
    )
    for start in range(0, rows, batch):
        count = min(batch, rows - start)
        # md5 text does not compress much, so the dump stays large like real catalog rows.
        psql_exec(
            scope,
            pg,
            "INSERT INTO media (path, title, size, seen) SELECT "
            "'/media/library/' || md5(g::text) || '/' || md5((g * 7)::text) || '.mkv', "
            "'Title ' || md5((g * 13)::text) || ' ' || md5((g * 17)::text), g::bigint * 4096, now() "
            f"FROM generate_series({start + 1}, {start + count}) g",
        )
    return psql_exec(scope, pg, f"SELECT pg_size_pretty(pg_database_size('{PG_DB}'))")


def plain_dump(pg_name: str, target: Path) -> float:
    started = time.monotonic()
    with target.open("wb") as out:
        subprocess.run(
            ["docker", "exec", pg_name, "pg_dump", "--format=custom", "--username", PG_USER, "--dbname", PG_DB],
            stdout=out,
            check=True,
        )
    return time.monotonic() - started


def timed_hook(env: dict[str, str]) -> tuple[float, dict]:
    started = time.monotonic()
    result = run_hook(SCRIPTS / "backup.py", env, timeout=3600)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"backup hook failed: {result.stderr}")
    return seconds, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-mb", type=int, default=1024, help="approximate table size to create")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved plain/hook rounds")
    args = parser.parse_args()
    ensure_images()
    workdir = tempfile.TemporaryDirectory(dir=ROOT, prefix=".benchmark-")
    with DockerScope(docker_client(), test_name="benchmark") as scope, workdir as tmp:
        work = Path(tmp)
        password = os.urandom(12).hex()
        pg = start_postgres(scope, scope.network(), scope.volume("bench-data"), password)
        started = time.monotonic()
        size = fill(scope, pg, args.target_mb)
        print(f"database filled: {size} in {time.monotonic() - started:.0f}s")
        plain_dump(pg.name, work / "warmup.dump")
        (work / "warmup.dump").unlink()
        env = {
            "PG_CONTAINER": pg.name,
            "PGUSER": PG_USER,
            "PGDATABASE": PG_DB,
            "PGPASSWORD": password,
            "BACKUP_DIR": str(work / "hook"),
            "BACKUP_KEEP": "1",
            "STACK_NAME": "bench",
        }
        offsite_env = {
            **env,
            "BACKUP_DIR": str(work / "offsite"),
            "RESTIC_REPOSITORY": str(work / "repository"),
            "RESTIC_PASSWORD": os.urandom(16).hex(),
        }
        init = run_hook(SCRIPTS / "preflight.py", {**offsite_env, "PREFLIGHT_MIN_FREE_GB": "0", "STACK_LABEL": "bench"})
        if init.returncode != 0:
            raise SystemExit(f"repository init failed: {init.stderr}")
        plain_times, hook_times, push_times = [], [], []
        # Interleaved rounds, best of each: a burst of other load on a 2-core host hits one
        # round, not one side of the comparison.
        for round_number in range(1, args.rounds + 1):
            plain_times.append(plain_dump(pg.name, work / "plain.dump"))
            dump_bytes = (work / "plain.dump").stat().st_size
            (work / "plain.dump").unlink()
            hook_times.append(timed_hook(env)[0])
            seconds, summary = timed_hook(offsite_env)
            push_times.append(seconds)
            print(
                f"round {round_number}: plain {plain_times[-1]:.2f}s ({dump_bytes / 1e6:.0f} MB), "
                f"hook {hook_times[-1]:.2f}s, hook with off-host push {push_times[-1]:.2f}s "
                f"({summary['bytes'] / 1e6:.0f} MB, snapshot {summary['snapshot']})"
            )
        plain, hook, push = min(plain_times), min(hook_times), min(push_times)
        print(f"plain pg_dump: {plain:.2f}s  backup hook: {hook:.2f}s  with push: {push:.2f}s (best of {args.rounds})")
        print(f"ratio hook/plain: {hook / plain:.3f} (goal <= 1.15)")
        print(f"ratio hook with off-host push/plain: {push / plain:.3f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
