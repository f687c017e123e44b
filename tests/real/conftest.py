"""Fixtures for tests against a real Docker engine.

The session fixture builds (or reuses) the local images and removes leftovers
of killed runs once; every test then gets its own DockerScope, which removes
whatever the test created even when it fails.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent
# tests/ is not a package, and the repo root holds the program's modules
# (rendering/, components/); make both importable however pytest was started.
for _p in (str(TESTS_DIR), str(REPO_ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from docker_harness import DockerScope, docker_client  # noqa: E402
from docker_sweeper import sweep_leftovers  # noqa: E402
from images.ensure import ensure_images  # noqa: E402


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    """A reachable Docker client with all test images built; fails (never skips) otherwise."""
    client = docker_client()
    ensure_images()
    removed = sweep_leftovers(client)
    if removed:
        sys.stderr.write("[docker] removed leftovers of earlier runs: " + ", ".join(removed) + "\n")
    yield client
    client.close()


@pytest.fixture
def docker_scope(docker_engine: docker.DockerClient, request: pytest.FixtureRequest) -> Iterator[DockerScope]:
    """Per-test owner of networks, volumes and containers; cleans up on exit."""
    with DockerScope(docker_engine, test_name=request.node.nodeid) as scope:
        yield scope
