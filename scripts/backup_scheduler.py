#!/usr/bin/env python3
"""Scheduled backups: the runbook's "daily 2 AM pg_dump", inside the backup-scheduler container.

Runs scripts/backup.py's dump, verification and retention on a cron schedule (host time),
connecting to PostgreSQL over the stack's network (PGHOST). `--check` is the container's
health check: unhealthy once a scheduled dump is more than BACKUP_GRACE_SECONDS overdue.
The same verdict and the dump times are served as Prometheus metrics on
BACKUP_METRICS_PORT (scheduler_metrics.py), for the stack's alerts.

Environment: BACKUP_SCHEDULE (cron, e.g. "0 2 * * *"), BACKUP_GRACE_SECONDS, BACKUP_DIR,
BACKUP_KEEP, STACK_NAME, PGHOST, PGUSER, PGDATABASE, PGPASSWORD, BACKUP_STATUS_FILE,
BACKUP_METRICS_PORT (default 9188; 0 turns the endpoint off).
"""

from __future__ import annotations

import datetime
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backup import Database, apply_retention, safe_stack_name, take_backup, write_atomically
from cron import CronSchedule
from hooklib import HookError, env, env_int, scrub
from scheduler_metrics import DEFAULT_PORT as METRICS_PORT
from scheduler_metrics import render as render_metrics
from scheduler_metrics import serve_in_background

DEFAULT_STATUS_FILE = "/var/lib/catalogizer-backup/status.json"


def status_file() -> Path:
    return Path(env("BACKUP_STATUS_FILE", DEFAULT_STATUS_FILE))


def read_status() -> dict[str, object]:
    try:
        return json.loads(status_file().read_text())
    except (OSError, ValueError):
        return {}


def write_status(status: dict[str, object]) -> None:
    path = status_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(status).encode())


def check(now: datetime.datetime | None = None) -> tuple[bool, str]:
    """Healthy unless a firing time older than the grace period passed without a good dump."""
    now = now or datetime.datetime.now()
    schedule = CronSchedule.parse(env("BACKUP_SCHEDULE"))
    grace = datetime.timedelta(seconds=env_int("BACKUP_GRACE_SECONDS", 600))
    status = read_status()
    due = schedule.previous_at_or_before(now - grace).timestamp()
    started = float(status.get("started", 0))  # type: ignore[arg-type]
    last_success = float(status.get("lastSuccess", 0))  # type: ignore[arg-type]
    if started > due or last_success >= due:
        return True, f"last dump {status.get('lastFile', 'none yet')}"
    overdue = datetime.datetime.fromtimestamp(due).isoformat(timespec="minutes")
    return False, f"the dump due at {overdue} has not succeeded; last error: {status.get('lastError', 'none')}"


def run_once(db: Database, directory: Path, stack: str, keep: int, status: dict[str, object]) -> None:
    try:
        result = take_backup(db, directory, stack)
        apply_retention(directory, stack, keep)
    except HookError as exc:
        status.update(lastFailure=time.time(), lastError=scrub(str(exc)))
        print(json.dumps({"event": "backup failed", "error": scrub(str(exc))}), flush=True)
    else:
        status.update(lastSuccess=time.time(), lastFile=str(result.file), lastError=None)
        print(json.dumps({"event": "backup", **result.summary()}), flush=True)
    write_status(status)


def serve() -> None:
    schedule = CronSchedule.parse(env("BACKUP_SCHEDULE"))
    stack = safe_stack_name(env("STACK_NAME"))
    directory = Path(env("BACKUP_DIR"))
    keep = env_int("BACKUP_KEEP", 10)
    db = Database.from_env()
    status: dict[str, object] = {"started": time.time(), **{k: v for k, v in read_status().items() if k != "started"}}
    write_status(status)
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    metrics_port = env_int("BACKUP_METRICS_PORT", METRICS_PORT)
    if metrics_port:
        # Read fresh per scrape: the page says what the health check would say now.
        serve_in_background(metrics_port, lambda: render_metrics(read_status(), check()[0]))
    print(json.dumps({"event": "started", "schedule": env("BACKUP_SCHEDULE")}), flush=True)
    while not stopping:
        fire_at = schedule.next_after(datetime.datetime.now())
        while not stopping and datetime.datetime.now() < fire_at:
            time.sleep(min(1.0, max(0.0, (fire_at - datetime.datetime.now()).total_seconds())))
        if not stopping:
            run_once(db, directory, stack, keep, status)


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        healthy, message = check()
        print(message)
        sys.exit(0 if healthy else 1)
    try:
        serve()
    except (HookError, ValueError) as exc:
        sys.stderr.write(f"backup scheduler cannot start: {scrub(str(exc))}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
