"""Issue 17: a failed run ends only when every step it started has finished, reports all of its
failures, and leaves nothing in flight for the next run. Also audit finding 3: what the next run
does with a container recorded with an init error (empty update, or replacement when a
`replace_on_changes` path covers "#initerror")."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from pathlib import Path

import docker.errors
import pytest
from docker_harness import DockerScope
from images import tags
from providers_docker import HEALTHY_STATE_ERROR
from rehearsal_engine import DeploymentFailed, Rehearsal
from rehearsal_stack import say

PROGRAM = Path(__file__).resolve().parent / "programs" / "two_failing_waits.py"
SHORT, LONG = 2, 6


def _config(prefix: str, replace_on_init_error: bool) -> dict[str, str]:
    return {
        "race:prefix": prefix,
        "race:image": tags.REDIS,
        "race:shortWait": str(SHORT),
        "race:longWait": str(LONG),
        "race:replaceOnInitError": "true" if replace_on_init_error else "false",
    }


def _never_retrieved(caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()
    return [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]


def _failed_up(engine: Rehearsal, config: dict[str, str]) -> tuple[DeploymentFailed, float]:
    started = time.monotonic()
    with pytest.raises(DeploymentFailed) as caught:
        engine.up("race", config)
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("replace_on_init_error", [False, True], ids=["no-replace-on-changes", "replace-on-star"])
def test_failed_run_waits_for_its_steps_and_reports_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest, replace_on_init_error: bool
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    started = time.monotonic()
    with DockerScope(test_name=request.node.nodeid) as scope:
        prefix = scope.name("race")
        for role in ("short", "long"):
            scope.track_container(f"{prefix}-{role}")
        engine = Rehearsal(tmp_path / "state.json", client=scope.client, program=PROGRAM)
        config = _config(prefix, replace_on_init_error)
        try:
            failed, seconds = _failed_up(engine, config)
            # The run returned only after the longer wait ran out (the provider waits the whole
            # wait_timeout), and it reports both failures, each naming its resource.
            assert seconds >= LONG, seconds
            assert engine.run.inflight == 0
            assert len(failed.failures) == 2, failed.failures
            for role in ("short", "long"):
                assert any(f.startswith(f"{role}-wait (docker:index/container:Container): ") for f in failed.failures)
            assert all(f.endswith(HEALTHY_STATE_ERROR) for f in failed.failures), failed.failures
            assert _never_retrieved(caplog) == []
            # Both containers exist and are recorded with their init error.
            state = engine.load_state()["resources"]
            first_ids = {}
            for role in ("short", "long"):
                entry = next(e for e in state.values() if e["name"] == f"{role}-wait")
                assert entry["init_errors"] == [HEALTHY_STATE_ERROR]
                first_ids[role] = entry["id"]
                assert scope.client.containers.get(entry["id"]).status == "running"

            if not replace_on_init_error:
                # Unchanged inputs, no path covering "#initerror": the engine's empty update. No
                # provider call, no new wait: the broken containers are accepted and the error cleared.
                result = engine.up("race", config)
                assert sorted(result.actions("update")) == ["long-wait", "short-wait"]
                assert result.actions("create") == [] and result.actions("replace-delete") == []
                assert result.seconds < SHORT, result.seconds
                state = engine.load_state()["resources"]
                assert all(e["init_errors"] == [] for e in state.values())
                assert {e["name"]: e["id"] for e in state.values()} == {f"{r}-wait": i for r, i in first_ids.items()}
                outcome = "next run: empty update, init errors cleared, same containers"
            else:
                # replace_on_changes=["*"] covers "#initerror": the next run replaces both (delete
                # first, as the program asks), waits again and fails again, reporting both.
                again, seconds = _failed_up(engine, config)
                assert seconds >= LONG and len(again.failures) == 2, (seconds, again.failures)
                assert sorted(e.name for e in again.events if e.action == "replace-delete") == [
                    "long-wait",
                    "short-wait",
                ]
                state = engine.load_state()["resources"]
                for role, old_id in first_ids.items():
                    entry = next(e for e in state.values() if e["name"] == f"{role}-wait")
                    assert entry["id"] != old_id and entry["init_errors"] == [HEALTHY_STATE_ERROR]
                    with pytest.raises(docker.errors.NotFound):
                        scope.client.containers.get(old_id)
                assert _never_retrieved(caplog) == []
                outcome = "next run: both replaced (#initerror covered by '*'), both failures reported again"
        finally:
            with contextlib.suppress(Exception):
                engine.destroy()
    say(
        request.config,
        f"[rehearsal] failed run ({request.node.callspec.id}): {time.monotonic() - started:.1f}s, passed "
        f"(2 failures reported after {seconds:.1f}s, nothing in flight; {outcome})",
    )
