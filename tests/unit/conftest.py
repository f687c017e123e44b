"""Fixtures for the mock-runtime tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_docker import FakeDocker
from program import Deployment
from workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture
def dev(workspace: Workspace) -> Deployment:
    return workspace.deploy("dev")


@pytest.fixture
def prod(workspace: Workspace) -> Deployment:
    return workspace.deploy("prod")


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    return FakeDocker(tmp_path / "fake-docker", monkeypatch)
