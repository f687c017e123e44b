"""scripts/scheduler_metrics.py: the page Prometheus scrapes from the backup scheduler."""

from __future__ import annotations

import http.client
from pathlib import Path

# Imported as scripts.scheduler_metrics, the name mutmut gives its mutants (tests/mutation).
from scripts import scheduler_metrics


def _samples(page: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line and not line.startswith("#")
    }


def test_backup_state_and_overdue_verdict() -> None:
    page = "\n".join(scheduler_metrics.backup_metrics({"lastSuccess": 1700000000.5, "lastFailure": 1700000100}, False))
    samples = _samples(page)
    assert samples["catalogizer_backup_last_success_timestamp_seconds"] == 1700000000.5
    assert samples["catalogizer_backup_last_failure_timestamp_seconds"] == 1700000100
    assert samples["catalogizer_backup_overdue"] == 1
    assert "# TYPE catalogizer_backup_overdue gauge" in page
    fresh = _samples("\n".join(scheduler_metrics.backup_metrics({}, True)))
    assert fresh == {"catalogizer_backup_overdue": 0}


def test_offsite_and_drill_metrics_appear_only_once_recorded() -> None:
    assert scheduler_metrics.offsite_metrics({}) == []
    samples = _samples(
        "\n".join(
            scheduler_metrics.offsite_metrics(
                {"lastOffsitePush": 10, "lastOffsitePushOk": False, "lastDrill": 20, "lastDrillOk": True}
            )
        )
    )
    assert samples == {
        "catalogizer_backup_offsite_last_push_timestamp_seconds": 10,
        "catalogizer_backup_offsite_last_push_success": 0,
        "catalogizer_restore_drill_last_timestamp_seconds": 20,
        "catalogizer_restore_drill_last_success": 1,
    }


def test_disk_free_of_existing_paths_only(tmp_path: Path) -> None:
    samples = _samples("\n".join(scheduler_metrics.disk_metrics({"backups": str(tmp_path), "gone": "/nonexistent/x"})))
    assert list(samples) == ['catalogizer_disk_free_bytes{path="backups"}'] and samples[next(iter(samples))] > 0


def test_served_on_metrics_only() -> None:
    server = scheduler_metrics.serve_in_background(0, lambda: "catalogizer_backup_overdue 0\n", "127.0.0.1")
    port = server.server_address[1]
    try:
        for path, status in (("/metrics", 200), ("/", 404)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            assert response.status == status, path
            if status == 200:
                assert body == b"catalogizer_backup_overdue 0\n"
                assert response.getheader("Content-Type").startswith("text/plain; version=0.0.4")
            conn.close()
    finally:
        server.shutdown()
        server.server_close()
