"""scripts/backup_scheduler.py without a container: the health verdict, the status file, one run."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest
from fake_docker import FakeDocker

from scripts import backup, backup_scheduler

STACK = "catalogizer"
NOW = dt.datetime(2026, 11, 28, 12, 0)  # host time; the schedule fires daily at 02:00


@pytest.fixture
def status_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "status.json"
    monkeypatch.setenv("BACKUP_STATUS_FILE", str(path))
    monkeypatch.setenv("BACKUP_SCHEDULE", "0 2 * * *")
    monkeypatch.delenv("BACKUP_GRACE_SECONDS", raising=False)
    return path


def _status(path: Path, **values: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


def _ts(moment: dt.datetime) -> float:
    return moment.timestamp()


def test_status_file_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKUP_STATUS_FILE", raising=False)
    assert backup_scheduler.DEFAULT_STATUS_FILE == "/var/lib/catalogizer-backup/status.json"
    assert backup_scheduler.status_file() == Path("/var/lib/catalogizer-backup/status.json")


def test_read_status_tolerates_a_missing_or_broken_file(status_path: Path) -> None:
    assert backup_scheduler.read_status() == {}
    _status(status_path, lastSuccess=1.5)
    assert backup_scheduler.read_status() == {"lastSuccess": 1.5}
    status_path.write_text("{half")
    assert backup_scheduler.read_status() == {}


def test_write_status_is_atomic_and_private(status_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[tuple[Path, bytes]] = []
    real = backup_scheduler.write_atomically

    def spy(target: Path, data: bytes) -> None:
        written.append((target, data))
        real(target, data)

    monkeypatch.setattr(backup_scheduler, "write_atomically", spy)
    backup_scheduler.write_status({"lastSuccess": 2.0})
    assert written == [(status_path, b'{"lastSuccess": 2.0}')]
    assert json.loads(status_path.read_text()) == {"lastSuccess": 2.0}
    assert stat.S_IMODE(status_path.stat().st_mode) == 0o600


def test_check_is_healthy_after_todays_dump(status_path: Path) -> None:
    _status(
        status_path,
        started=_ts(NOW - dt.timedelta(days=3)),
        lastSuccess=_ts(dt.datetime(2026, 11, 28, 2, 1)),
        lastFile="/backups/catalogizer_x.dump",
    )
    assert backup_scheduler.check(NOW) == (True, "last dump /backups/catalogizer_x.dump")


def test_check_is_unhealthy_when_a_firing_passed_without_a_success(status_path: Path) -> None:
    _status(
        status_path,
        started=_ts(NOW - dt.timedelta(days=3)),
        lastSuccess=_ts(dt.datetime(2026, 11, 27, 2, 1)),
        lastError="pg_dump failed",
    )
    healthy, message = backup_scheduler.check(NOW)
    assert not healthy
    assert message == "the dump due at 2026-11-28T02:00 has not succeeded; last error: pg_dump failed"


def test_check_is_unhealthy_with_no_success_recorded_at_all(status_path: Path) -> None:
    _status(status_path, started=_ts(NOW - dt.timedelta(days=3)))
    assert backup_scheduler.check(NOW) == (
        False,
        "the dump due at 2026-11-28T02:00 has not succeeded; last error: none",
    )
    status_path.unlink()
    assert backup_scheduler.check(NOW)[0] is False


def test_check_gives_a_fresh_scheduler_until_its_first_firing(status_path: Path) -> None:
    _status(status_path, started=_ts(NOW - dt.timedelta(hours=1)))
    assert backup_scheduler.check(NOW) == (True, "last dump none yet")


def test_check_allows_the_grace_period(status_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _status(status_path, started=_ts(dt.datetime(2026, 11, 20)), lastSuccess=_ts(dt.datetime(2026, 11, 27, 2, 1)))
    # The default grace is 600 s: at 02:09:59 today's dump is not yet overdue, at 02:10 it is.
    assert backup_scheduler.check(dt.datetime(2026, 11, 28, 2, 9, 59))[0] is True
    assert backup_scheduler.check(dt.datetime(2026, 11, 28, 2, 10))[0] is False
    monkeypatch.setenv("BACKUP_GRACE_SECONDS", "3600")
    assert backup_scheduler.check(dt.datetime(2026, 11, 28, 2, 59))[0] is True
    assert backup_scheduler.check(dt.datetime(2026, 11, 28, 3, 0))[0] is False


def test_check_counts_a_success_exactly_at_the_due_time(status_path: Path) -> None:
    due = dt.datetime(2026, 11, 28, 2, 0)
    _status(status_path, started=_ts(dt.datetime(2026, 11, 20)), lastSuccess=_ts(due))
    assert backup_scheduler.check(NOW)[0] is True
    _status(status_path, started=_ts(due), lastSuccess=_ts(due - dt.timedelta(seconds=1)))
    assert backup_scheduler.check(NOW)[0] is False  # started exactly then: that firing was its own


def test_check_defaults_to_now(status_path: Path) -> None:
    _status(status_path, started=_ts(dt.datetime.now()))
    assert backup_scheduler.check() == (True, "last dump none yet")
    _status(status_path, started=_ts(dt.datetime.now() - dt.timedelta(days=2)))
    assert backup_scheduler.check()[0] is False


@pytest.fixture
def pg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_docker: FakeDocker) -> Path:
    dump = tmp_path / "pg_dump.out"
    dump.write_bytes(b"PGDMP|x|")
    fake_docker.set(DUMP=str(dump))
    monkeypatch.setenv("PGPASSWORD", "pg-password-value")
    return tmp_path / "backups"


def test_run_once_records_a_success(
    pg: Path, status_path: Path, fake_docker: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    db = backup.Database(container="pg", user="u", name="d")
    old = [f"{STACK}_200011{d:02d}T020000000Z.dump" for d in (1, 2, 3)]
    pg.mkdir()
    for name in old:
        (pg / name).write_bytes(b"x")
    status: dict[str, object] = {"started": 1.0, "lastError": "earlier failure"}
    backup_scheduler.run_once(db, pg, STACK, 2, status)
    saved = json.loads(status_path.read_text())
    assert saved == status
    assert saved["started"] == 1.0 and saved["lastError"] is None
    dumps = backup.dumps_of(pg, STACK)
    assert saved["lastFile"] == str(dumps[-1].resolve())
    assert abs(float(saved["lastSuccess"]) - dt.datetime.now().timestamp()) < 60  # type: ignore[arg-type]
    assert [p.name for p in dumps][:1] == old[-1:] and len(dumps) == 2
    event = json.loads(capsys.readouterr().out)
    assert event["event"] == "backup" and event["file"] == saved["lastFile"]


def test_run_once_records_a_failure_without_the_password(
    pg: Path, status_path: Path, fake_docker: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_docker.set(DUMP_EXIT="1", DUMP_ERR="FATAL: password pg-password-value rejected\n")
    status: dict[str, object] = {"started": 1.0, "lastSuccess": 5.0}
    backup_scheduler.run_once(backup.Database(container="pg", user="u", name="d"), pg, STACK, 2, status)
    saved = json.loads(status_path.read_text())
    error = "pg_dump of d in pg failed (exit 1): FATAL: password *** rejected"
    assert saved["lastSuccess"] == 5.0 and saved["lastError"] == error
    assert abs(float(saved["lastFailure"]) - dt.datetime.now().timestamp()) < 60  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert json.loads(out) == {"event": "backup failed", "error": error}
    assert "pg-password-value" not in status_path.read_text() + out


def test_main_check_exits_by_the_verdict(
    status_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["backup_scheduler.py", "--check"])
    _status(status_path, started=_ts(dt.datetime.now()))
    with pytest.raises(SystemExit) as exited:
        backup_scheduler.main()
    assert exited.value.code == 0 and capsys.readouterr().out == "last dump none yet\n"
    _status(status_path, started=1.0)
    with pytest.raises(SystemExit) as exited:
        backup_scheduler.main()
    assert exited.value.code == 1 and "has not succeeded" in capsys.readouterr().out


def test_main_refuses_to_start_on_bad_settings(
    status_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["backup_scheduler.py"])
    monkeypatch.setenv("BACKUP_SCHEDULE", "0 2 31 2 *")
    monkeypatch.setenv("PGPASSWORD", "pg-password-value")
    with pytest.raises(SystemExit) as exited:
        backup_scheduler.main()
    assert exited.value.code == 1
    assert capsys.readouterr().err == "backup scheduler cannot start: the schedule never fires\n"
    monkeypatch.setenv("BACKUP_SCHEDULE", "0 2 * * *")
    monkeypatch.delenv("STACK_NAME", raising=False)
    with pytest.raises(SystemExit):
        backup_scheduler.main()
    assert capsys.readouterr().err == "backup scheduler cannot start: environment variable STACK_NAME is required\n"


def test_serve_runs_at_each_firing_and_stops_on_sigterm(
    pg: Path, status_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every minute, with a clock that jumps: each sleep moves it to the next firing.
    clock = [dt.datetime(2026, 11, 28, 1, 59, 30)]
    runs: list[dt.datetime] = []

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Clock:  # type: ignore[override]
            return clock[0]  # type: ignore[return-value]

    def sleep(seconds: float) -> None:
        assert 0 <= seconds <= 1.0
        clock[0] += dt.timedelta(seconds=30)

    def run_once(
        db: backup.Database,
        directory: Path,
        stack: str,
        keep: int,
        status: dict[str, object],
        repository: object | None = None,
    ) -> None:
        runs.append(clock[0])
        assert (db.container, db.user, db.name, directory, stack, keep) == (None, "u", "d", pg, STACK, 3)
        assert repository is None  # no BACKUP_REPOSITORY: the local dump alone
        if len(runs) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(backup_scheduler.datetime, "datetime", Clock)
    monkeypatch.setattr(backup_scheduler.time, "sleep", sleep)
    monkeypatch.setattr(backup_scheduler, "run_once", run_once)
    for name, value in {
        "BACKUP_SCHEDULE": "* * * * *",
        "STACK_NAME": STACK,
        "BACKUP_DIR": str(pg),
        "BACKUP_KEEP": "3",
        "PGHOST": "postgres",
        "PG_CONTAINER": "",
        "PGUSER": "u",
        "PGDATABASE": "d",
        # No metrics endpoint: a unit test opens no port (9188 may be in use by anything else).
        "BACKUP_METRICS_PORT": "0",
    }.items():
        monkeypatch.setenv(name, value)
    _status(status_path, started=1.0, lastSuccess=2.0)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        backup_scheduler.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert runs == [dt.datetime(2026, 11, 28, 2, 0), dt.datetime(2026, 11, 28, 2, 1)]
    saved = json.loads(status_path.read_text())
    assert saved["lastSuccess"] == 2.0 and saved["started"] > 2.0
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == {"event": "started", "schedule": "* * * * *"}
