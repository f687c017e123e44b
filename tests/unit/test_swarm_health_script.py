"""scripts/swarm_health.py without a swarm: its checks, and that it reports through the same loop and
report as scripts/health_check.py (health_check.verify), rechecking every check each round."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator

import pytest
from script_support import run_main

from scripts import swarm_health

# The health_check module swarm_health imports (as the hook runs it: scripts/ on sys.path), whose
# loop and report it uses.
health_check = sys.modules[swarm_health.verify.__module__]


class FakeTime:
    """Replaces health_check's `time`: a clock that moves only when the loop sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Iterator[tuple[bool, str]]]:
    """Each check's answers, round by round (the last one repeats)."""
    scripted: dict[str, list[tuple[bool, str]]] = {}

    def probe_of(name: str) -> Callable[[], tuple[bool, str]]:
        def probe() -> tuple[bool, str]:
            sequence = scripted[name]
            return sequence.pop(0) if len(sequence) > 1 else sequence[0]

        return probe

    monkeypatch.setattr(swarm_health, "service_probe", lambda service, timeout: probe_of(f"service:{service}"))
    monkeypatch.setattr(swarm_health, "nginx_check", lambda timeout: health_check.Check("nginx", "", probe_of("nginx")))
    monkeypatch.setattr(health_check, "time", FakeTime())
    for name, value in {
        "SWARM_SERVICES": "st-postgres,st-api",
        "HEALTH_TIMEOUT": "10",
        "HEALTH_INTERVAL": "2",
    }.items():
        monkeypatch.setenv(name, value)
    return scripted  # type: ignore[return-value]


def _run(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_main(swarm_health.main, capsys)


def test_healthy_summary_names_every_service_and_nginx(answers: dict, capsys: pytest.CaptureFixture[str]) -> None:
    answers.update(
        {
            "service:st-postgres": [(True, "1/1 tasks running, 1 wanted on 1 node(s)")],
            "service:st-api": [(False, "1/2 tasks running"), (True, "2/2 tasks running, 2 wanted on 2 node(s)")],
            "nginx": [(True, 'HTTP 200 {"status": "healthy"}')],
        }
    )
    code, out, err = _run(capsys)
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["status"] == "healthy" and summary["attempts"] == 2 and summary["seconds"] == 2.0
    assert summary["checks"] == {
        "service:st-postgres": "1/1 tasks running, 1 wanted on 1 node(s)",
        "service:st-api": "2/2 tasks running, 2 wanted on 2 node(s)",
        "nginx": 'HTTP 200 {"status": "healthy"}',
    }


def test_every_round_rechecks_what_passed_before(answers: dict, capsys: pytest.CaptureFixture[str]) -> None:
    # The database's task dies after the first round; nginx needed that round to come up.
    answers.update(
        {
            "service:st-postgres": [(True, "1/1 tasks running"), (False, "0/1 tasks running; exit 137")],
            "service:st-api": [(True, "2/2 tasks running")],
            "nginx": [(False, "ConnectionRefusedError: refused"), (True, "HTTP 200")],
        }
    )
    code, out, err = _run(capsys)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    # Attempts at 0, 2, 4, 6, 8 and 10 s, as on one host; no container logs to add in swarm mode.
    assert lines == [
        "swarm health check failed after 10.0s (6 attempts):",
        "- service:st-postgres: last answer: 0/1 tasks running; exit 137",
    ]


def test_cannot_start_without_services(answers: dict, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("SWARM_SERVICES", ",")
    code, out, err = _run(capsys)
    assert (code, out, err) == (1, "", "swarm health check could not start: SWARM_SERVICES names no service\n")
