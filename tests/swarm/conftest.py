"""Fixtures for the swarm tests: one 3-node cluster per session, removed whatever happens."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TESTS_DIR = HERE.parent
REPO_ROOT = TESTS_DIR.parent
for _p in (str(REPO_ROOT), str(TESTS_DIR), str(TESTS_DIR / "rehearsal"), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from cluster import SwarmCluster  # noqa: E402
from images.ensure import ensure_images  # noqa: E402
from rehearsal_stack import say  # noqa: E402

# A small image with python3: the tests' listeners and clients.
PROBE_IMAGE = "catalogizer-test/python-runtime:bookworm"


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[SwarmCluster]:
    ensure_images()
    # Past pytest's capture (rehearsal_stack.say): the `[swarm]` figures show in every CI log.
    built = SwarmCluster(say=functools.partial(say, request.config))
    # A CI timeout's SIGTERM arrives as KeyboardInterrupt (tests/conftest.py): the teardown below runs.
    try:
        built.up()
        yield built
    finally:
        problems = built.down()
        # A leftover namespace, engine or rule would outlive the run: that is a failure.
        assert not problems, f"swarm cluster teardown left: {problems}"


@pytest.fixture(scope="session")
def probe_image(cluster: SwarmCluster) -> str:
    return cluster.push_image(PROBE_IMAGE)
