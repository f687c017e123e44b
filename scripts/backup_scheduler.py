#!/usr/bin/env python3
"""Scheduled backups: the runbook's "daily 2 AM pg_dump", inside the backup-scheduler container.

Runs scripts/backup.py's dump, verification and retention on a cron schedule (host time),
connecting to PostgreSQL over the stack's network (PGHOST). `--check` is the container's
health check: unhealthy once a scheduled dump is more than BACKUP_GRACE_SECONDS overdue.
The same verdict and the dump times are served as Prometheus metrics on
BACKUP_METRICS_PORT (scheduler_metrics.py), for the stack's alerts.

Environment: BACKUP_SCHEDULE (cron, e.g. "0 2 * * *"), BACKUP_GRACE_SECONDS, BACKUP_DIR,
BACKUP_KEEP, STACK_NAME, PGHOST, PGUSER, PGDATABASE, PGPASSWORD, BACKUP_STATUS_FILE,
BACKUP_METRICS_PORT (default 9188; 0 turns the endpoint off). `--metrics` prints the page once.

Off-host (issue 11), when RESTIC_REPOSITORY is set: each scheduled dump is pushed (kind
`scheduled`), pruned there and checked with BACKUP_CHECK_READ_DATA (a share of the data read
back); DRILL_SCHEDULE runs scripts/restore_drill.py's drill. A failed dump, push, check or drill
makes the container unhealthy at once, until the next success. The status file records them
under the names scheduler_metrics.py reads: `lastOffsitePush`/`lastOffsitePushOk` (push, prune
and check of the last scheduled dump) and `lastDrill`/`lastDrillOk` (the newest drill, this
scheduler's or one run by hand or by the pre-update hook: its record in the backup folder).
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backup import Database, apply_retention, safe_stack_name, take_backup, write_atomically
from cron import CronSchedule
from hooklib import HookError, env, env_int, scrub
from offsite import Repository
from restore_drill import RECORD_SUFFIX, drill
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
    """Healthy unless a scheduled dump is overdue or, with a repository, the last dump, push or drill failed."""
    status = read_status()
    # Without a repository the rule stays as before: unhealthy only once a dump is overdue.
    offsite_problem = offsite_health(status) if os.environ.get("RESTIC_REPOSITORY") else None
    if offsite_problem:
        return False, offsite_problem
    return dump_verdict(status, now)


def dump_verdict(status: dict[str, object], now: datetime.datetime | None = None) -> tuple[bool, str]:
    """The overdue rule alone (catalogizer_backup_overdue): a firing time older than the grace
    period passed without a good dump. A failed push or drill is not an overdue dump."""
    now = now or datetime.datetime.now()
    schedule = CronSchedule.parse(env("BACKUP_SCHEDULE"))
    grace = datetime.timedelta(seconds=env_int("BACKUP_GRACE_SECONDS", 600))
    due = schedule.previous_at_or_before(now - grace).timestamp()
    started = float(status.get("started", 0))  # type: ignore[arg-type]
    last_success = float(status.get("lastSuccess", 0))  # type: ignore[arg-type]
    if started > due or last_success >= due:
        return True, f"last dump {status.get('lastFile', 'none yet')}"
    overdue = datetime.datetime.fromtimestamp(due).isoformat(timespec="minutes")
    return False, f"the dump due at {overdue} has not succeeded; last error: {status.get('lastError', 'none')}"


def offsite_health(status: dict[str, object]) -> str | None:
    """Why the off-host side is unhealthy now, or None: the latest dump or push failed, or the last drill did."""
    if float(status.get("lastFailure", 0)) > float(status.get("lastSuccess", 0)):  # type: ignore[arg-type]
        return f"the last scheduled backup failed: {status.get('lastError')}"
    if status.get("lastOffsitePushOk") is False:
        return f"the last scheduled backup failed: {status.get('lastOffsiteError')}"
    last_drill = current_drill(status)
    if last_drill is not None and not last_drill.get("ok"):
        detail = last_drill.get("error") or "; ".join(last_drill.get("differences") or [])  # type: ignore[arg-type]
        return f"the restore drill of snapshot {last_drill.get('snapshot', '?')} failed: {detail}"
    return None


def last_drill_record() -> dict[str, object] | None:
    """The newest drill's record in the backup folder: the scheduler's, or one run by hand after a
    fix (scripts/restore_drill.py writes the same file), which then clears the unhealthy state."""
    try:
        stack = safe_stack_name(env("STACK_NAME"))
        record = json.loads((Path(env("BACKUP_DIR")) / f"{stack}{RECORD_SUFFIX}").read_text())
    except (OSError, ValueError, HookError):
        return None
    return record if isinstance(record, dict) else None


def drill_time(record: dict[str, object]) -> float:
    """When a drill record was made (its `at`, ISO 8601 with offset), as unix time; 0 if unknown."""
    try:
        return datetime.datetime.fromisoformat(str(record["at"])).timestamp()
    except (KeyError, ValueError):
        return 0.0


def current_drill(status: dict[str, object]) -> dict[str, object] | None:
    """The newer of the folder's drill record and the one this scheduler kept (`lastDrillRecord`:
    the only one when the drill could not even write its record)."""
    kept = status.get("lastDrillRecord")
    records = [r for r in (last_drill_record(), kept) if isinstance(r, dict)]
    return max(records, key=drill_time) if records else None


def drill_status(record: dict[str, object]) -> dict[str, object]:
    """A drill record as the status keys scheduler_metrics.py reads."""
    return {"lastDrill": drill_time(record) or time.time(), "lastDrillOk": record.get("ok") is True}


def metrics_status() -> dict[str, object]:
    """The status file with the drill fields of the newest drill record, for the /metrics page.
    Without a repository no drill runs; a record left in the folder from before is not current."""
    status = read_status()
    record = current_drill(status) if os.environ.get("RESTIC_REPOSITORY") else None
    if record is not None:
        status.update(drill_status(record))
    return status


def metrics_page() -> str:
    status = metrics_status()
    return render_metrics(status, dump_verdict(status)[0])


def run_once(
    db: Database,
    directory: Path,
    stack: str,
    keep: int,
    status: dict[str, object],
    repository: Repository | None = None,
) -> None:
    try:
        result = take_backup(db, directory, stack, manifest=repository is not None)
        apply_retention(directory, stack, keep)
    except HookError as exc:
        status.update(lastFailure=time.time(), lastError=scrub(str(exc)))
        print(json.dumps({"event": "backup failed", "error": scrub(str(exc))}), flush=True)
        write_status(status)
        return
    status.update(lastSuccess=time.time(), lastFile=str(result.file), lastError=None)
    summary = result.summary()
    if repository is not None:
        # The local dump is good either way (no overdue alert); the push has its own verdict.
        try:
            summary.update(repository.publish(result, "scheduled", keep))
        except HookError as exc:
            status.update(lastOffsitePush=time.time(), lastOffsitePushOk=False, lastOffsiteError=scrub(str(exc)))
            print(json.dumps({"event": "off-host push failed", **summary, "error": scrub(str(exc))}), flush=True)
            write_status(status)
            return
        status.update(
            lastOffsitePush=time.time(), lastOffsitePushOk=True, lastOffsiteError=None, lastSnapshot=summary["snapshot"]
        )
    print(json.dumps({"event": "backup", **summary}), flush=True)
    write_status(status)


def run_drill(db: Database, directory: Path, repository: Repository, status: dict[str, object]) -> None:
    """The scheduled restore drill; its record is kept in the status the health check and /metrics read."""
    try:
        record = drill(db, repository, directory)
    except HookError as exc:  # the record could not even be written
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        record = {"ok": False, "at": now, "error": scrub(str(exc))}
    status["lastDrillRecord"] = record
    status.update(drill_status(record))
    print(json.dumps({"event": "restore drill", **record}), flush=True)
    write_status(status)


def drill_schedule() -> CronSchedule | None:
    text = env("DRILL_SCHEDULE", "-")
    return None if text == "-" else CronSchedule.parse(text)


def serve() -> None:
    schedule = CronSchedule.parse(env("BACKUP_SCHEDULE"))
    stack = safe_stack_name(env("STACK_NAME"))
    directory = Path(env("BACKUP_DIR"))
    keep = env_int("BACKUP_KEEP", 10)
    db = Database.from_env()
    repository = Repository.from_env(stack, directory)
    drills = drill_schedule() if repository is not None else None
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
        # Read fresh per scrape: the page says what the status file and the drill record say now.
        serve_in_background(metrics_port, metrics_page)
    print(json.dumps({"event": "started", "schedule": env("BACKUP_SCHEDULE")}), flush=True)
    while not stopping:
        now = datetime.datetime.now()
        fire_at = schedule.next_after(now)
        # Both jobs can be due at once: the dump runs first, so the drill restores the newest copy.
        drill_at = drills.next_after(now) if drills else None
        wake = min(fire_at, drill_at) if drill_at else fire_at
        while not stopping and datetime.datetime.now() < wake:
            time.sleep(min(1.0, max(0.0, (wake - datetime.datetime.now()).total_seconds())))
        if stopping:
            break
        if wake == fire_at:
            run_once(db, directory, stack, keep, status, repository)
        if drill_at is not None and drill_at == wake and repository is not None:
            run_drill(db, directory, repository, status)


def main() -> None:
    if sys.argv[1:] == ["--metrics"]:
        sys.stdout.write(metrics_page())
        return
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
