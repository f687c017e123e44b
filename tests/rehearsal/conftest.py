"""Fixtures for the deploy rehearsal: one real stack, walked through every scenario.

The module-scoped `stack` is deployed by the first scenario and carried through update,
bad update, rollback, destroy and re-up by the next ones. Whatever happens, its teardown
removes every container, network and volume the program created (protected volumes too)
and the API images it built.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TESTS_DIR = HERE.parent
REPO_ROOT = TESTS_DIR.parent
# tests/ is not a package: make the shared helpers and this folder's modules importable.
for _p in (str(REPO_ROOT), str(TESTS_DIR), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from docker_harness import DockerScope, docker_client  # noqa: E402
from docker_sweeper import sweep_leftovers  # noqa: E402
from images.ensure import ensure_images  # noqa: E402
from rehearsal_stack import Stack, say  # noqa: E402

SCENARIOS = ("1", "1b", "2", "3", "3b", "4", "5", "5b", "5c", "6")


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    client = docker_client()
    ensure_images()
    removed = sweep_leftovers(client)
    if removed:
        sys.stderr.write("[rehearsal] removed leftovers of earlier runs: " + ", ".join(removed) + "\n")
    started = time.monotonic()
    with DockerScope(client, test_name=request.node.nodeid) as scope:
        walk = Stack(scope, tmp_path_factory.mktemp("rehearsal"), request.config)
        try:
            yield walk
        finally:
            if not all(walk.results.get(s) for s in SCENARIOS):
                say(request.config, "[rehearsal] a scenario failed; the engine's last steps:")
                for line in walk.log_lines[-150:]:
                    say(request.config, "  " + line)
            problems = walk.remove_everything()
            for line in walk.summaries:
                say(request.config, line)
            say(request.config, f"[rehearsal] total (with teardown): {time.monotonic() - started:.1f}s")
            if problems:
                say(request.config, "[rehearsal] teardown: " + "; ".join(problems))
    client.close()
