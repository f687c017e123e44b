"""The backup scheduler's state as Prometheus metrics, served on BACKUP_METRICS_PORT (/metrics).

Prometheus scrapes it over the stack's network (rendering/monitoring.py, job
"backup-scheduler"); the alert rules in rendering/alerts.py read these names. Text
exposition format 0.0.4 (Prometheus docs, "Exposition formats"): `# HELP`, `# TYPE`,
then `name{labels} value` lines, content type `text/plain; version=0.0.4`.

The off-host push and the restore drill (scripts/offsite.py, scripts/restore_drill.py) are
read from the status file scripts/backup_scheduler.py writes:
- `lastOffsitePush` (unix time) and `lastOffsitePushOk` (bool) feed
  catalogizer_backup_offsite_last_push_{timestamp_seconds,success};
- `lastDrill` and `lastDrillOk` feed catalogizer_restore_drill_last_{timestamp_seconds,success}.
Absent keys (no repository, or nothing pushed or drilled yet) mean absent metrics, so their
alert rules stay silent until then.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_PORT = 9188
# Where the free-space gauge looks: the dump folder (a host folder) and the container's root,
# which sits on Docker's data root (overlay reports the backing filesystem's free space).
DISK_PATHS = {"backups": "BACKUP_DIR", "docker-data-root": None}


def _gauge(name: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{labels} {value:.17g}" for labels, value in samples]
    return lines


def backup_metrics(status: dict[str, object], healthy: bool) -> list[str]:
    """Scheduled dumps: last success and failure times, and the overdue flag the health check uses."""
    lines: list[str] = []
    for key, name, what in (
        ("lastSuccess", "catalogizer_backup_last_success_timestamp_seconds", "successful"),
        ("lastFailure", "catalogizer_backup_last_failure_timestamp_seconds", "failed"),
    ):
        if key in status:
            lines += _gauge(name, f"Unix time of the last {what} scheduled dump.", [("", float(status[key]))])  # type: ignore[arg-type]
    lines += _gauge(
        "catalogizer_backup_overdue",
        "1 when a scheduled dump is more than the grace period overdue (the health check's verdict).",
        [("", 0.0 if healthy else 1.0)],
    )
    return lines


def offsite_metrics(status: dict[str, object]) -> list[str]:
    """Off-host push and restore drill results, when the status file records them."""
    lines: list[str] = []
    for prefix, stamp_key, ok_key, what in (
        ("catalogizer_backup_offsite_last_push", "lastOffsitePush", "lastOffsitePushOk", "off-host push"),
        ("catalogizer_restore_drill_last", "lastDrill", "lastDrillOk", "restore drill"),
    ):
        stamp = status.get(stamp_key)
        # A number, as the scheduler writes it; anything else is no reading (the page must still render).
        if isinstance(stamp, int | float) and not isinstance(stamp, bool) and ok_key in status:
            lines += _gauge(f"{prefix}_timestamp_seconds", f"Unix time of the last {what}.", [("", float(stamp))])
            lines += _gauge(
                f"{prefix}_success", f"1 when the last {what} succeeded.", [("", 1.0 if status[ok_key] else 0.0)]
            )
    return lines


def disk_metrics(paths: dict[str, str]) -> list[str]:
    samples = []
    for label, path in paths.items():
        try:
            stat = os.statvfs(path)
        except OSError:
            continue  # a missing folder shows as an absent series, not a wrong number
        samples.append((f'{{path="{label}"}}', float(stat.f_bavail * stat.f_frsize)))
    return _gauge("catalogizer_disk_free_bytes", "Bytes free to unprivileged users.", samples)


def disk_paths() -> dict[str, str]:
    return {label: (os.environ.get(env, "/") if env else "/") for label, env in DISK_PATHS.items()}


def render(status: dict[str, object], healthy: bool) -> str:
    now = datetime.datetime.now().timestamp()
    lines = backup_metrics(status, healthy) + offsite_metrics(status) + disk_metrics(disk_paths())
    lines += _gauge(
        "catalogizer_backup_scheduler_scrape_timestamp_seconds", "When this page was rendered.", [("", now)]
    )
    return "\n".join(lines) + "\n"


def serve_in_background(port: int, page: Callable[[], str], address: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serves `page()` at /metrics from a daemon thread; the scheduler loop is unaffected."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = page().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per scrape would drown the dump events in `docker logs`

    # All addresses by default: Prometheus reaches it over the stack's network.
    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
