"""The scheduler's status after an off-host push or a restore drill, as /metrics serves it.

What scripts/backup_scheduler.py writes when a push or a drill fails must yield the value the
OffsitePushFailed / RestoreDrillFailed rules (rendering/alerts.py) fire on, and a failed push
must not look like an overdue dump. The dump, push and drill are stand-ins here; the real ones
are in tests/real/test_backup_scheduler_offsite.py and tests/real/test_restore_drill.py.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import backup_scheduler
from hooklib import HookError

from rendering.alerts import RuleParams, alert_rules


def samples(page: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line and not line.startswith("#")
    }


def fires(alert: str, page: str) -> bool:
    """Evaluates the rule's `metric == value` expression against the scraped page."""
    expr = next(r["expr"] for r in alert_rules(RuleParams()) if r["alert"] == alert)
    metric, value = expr.split(" == ")
    current = samples(page)
    return metric in current and current[metric] == float(value)


class FakeResult:
    file = Path("/backups/cztest_2026.dump")

    def summary(self) -> dict[str, object]:
        return {"file": str(self.file)}


class FakeRepository:
    stack = "cztest"

    def __init__(self, error: str | None) -> None:
        self.error = error

    def publish(self, _result: object, kind: str, _keep: int) -> dict[str, object]:
        if self.error:
            raise HookError(self.error)
        return {"snapshot": "1a2b3c4d", "kind": kind}


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name, value in {
        "BACKUP_SCHEDULE": "0 2 * * *",
        "BACKUP_GRACE_SECONDS": "600",
        "STACK_NAME": "cztest",
        "BACKUP_DIR": str(tmp_path),
        "BACKUP_STATUS_FILE": str(tmp_path / "status.json"),
        "RESTIC_REPOSITORY": str(tmp_path / "repository"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(backup_scheduler, "take_backup", lambda *_a, **_k: FakeResult())
    monkeypatch.setattr(backup_scheduler, "apply_retention", lambda *_a: None)
    return tmp_path


def run_once(repository: FakeRepository) -> dict[str, object]:
    status: dict[str, object] = {"started": 1.0}
    backup_scheduler.run_once(None, Path("/backups"), "cztest", 3, status, repository)  # type: ignore[arg-type]
    return backup_scheduler.read_status()


def test_a_failed_push_fires_offsite_push_failed_not_backup_overdue(scheduler: Path) -> None:
    status = run_once(FakeRepository("restic backup on /srv/r failed: repository does not exist"))
    assert status["lastOffsitePushOk"] is False and status["lastSuccess"]  # the local dump is good
    page = backup_scheduler.metrics_page()
    assert fires("OffsitePushFailed", page)
    assert not fires("BackupOverdue", page)
    assert backup_scheduler.check()[0] is False
    assert "restic backup on /srv/r failed" in backup_scheduler.check()[1]

    status = run_once(FakeRepository(None))
    assert status["lastOffsitePushOk"] is True and status["lastSnapshot"] == "1a2b3c4d"
    page = backup_scheduler.metrics_page()
    assert samples(page)["catalogizer_backup_offsite_last_push_success"] == 1
    assert not fires("OffsitePushFailed", page) and backup_scheduler.check()[0] is True


def test_without_a_repository_no_push_or_drill_metrics(scheduler: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESTIC_REPOSITORY")
    # A failed drill's record from when the stack still had a repository is not current.
    (scheduler / "cztest_restore-drill.json").write_text(json.dumps({"ok": False, "at": "2026-11-01T04:00:00+00:00"}))
    status: dict[str, object] = {"started": 1.0}
    backup_scheduler.run_once(None, Path("/backups"), "cztest", 3, status)  # type: ignore[arg-type]
    page = backup_scheduler.metrics_page()
    assert "offsite" not in page and "restore_drill" not in page


def test_a_failed_drill_fires_restore_drill_failed_until_a_drill_by_hand_passes(
    scheduler: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_file = scheduler / "cztest_restore-drill.json"
    earlier = datetime.datetime(2026, 11, 1, 4, 0, tzinfo=datetime.UTC)

    def failing_drill(*_args: object) -> dict[str, object]:
        record = {"ok": False, "at": earlier.isoformat(), "snapshot": "1a2b3c4d", "error": "restic dump failed"}
        record_file.write_text(json.dumps(record))  # as scripts/restore_drill.py does
        return record

    monkeypatch.setattr(backup_scheduler, "drill", failing_drill)
    status: dict[str, object] = {"started": time.time()}  # no dump due yet
    backup_scheduler.run_drill(None, scheduler, FakeRepository(None), status)  # type: ignore[arg-type]
    written = backup_scheduler.read_status()
    assert written["lastDrillOk"] is False and written["lastDrill"] == earlier.timestamp()
    page = backup_scheduler.metrics_page()
    assert fires("RestoreDrillFailed", page)
    assert samples(page)["catalogizer_restore_drill_last_timestamp_seconds"] == earlier.timestamp()
    assert not fires("BackupOverdue", page)
    assert backup_scheduler.check() == (False, "the restore drill of snapshot 1a2b3c4d failed: restic dump failed")

    # After a fix, scripts/restore_drill.py run by hand writes a newer, passing record: both clear.
    later = earlier + datetime.timedelta(hours=2)
    record_file.write_text(json.dumps({"ok": True, "at": later.isoformat(), "snapshot": "5e6f7a8b"}))
    page = backup_scheduler.metrics_page()
    assert not fires("RestoreDrillFailed", page)
    assert samples(page)["catalogizer_restore_drill_last_timestamp_seconds"] == later.timestamp()
    assert backup_scheduler.check()[0] is True


def test_a_drill_that_cannot_write_its_record_still_fires(scheduler: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_drill(*_args: object) -> dict[str, object]:
        raise HookError("cannot write the drill record: disk full")

    monkeypatch.setattr(backup_scheduler, "drill", broken_drill)
    status: dict[str, object] = {"started": 1.0}
    backup_scheduler.run_drill(None, scheduler, FakeRepository(None), status)  # type: ignore[arg-type]
    assert fires("RestoreDrillFailed", backup_scheduler.metrics_page())
    assert "disk full" in backup_scheduler.check()[1]
