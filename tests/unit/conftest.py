"""Fixtures for the mock-runtime tests."""

from __future__ import annotations

from pathlib import Path

import pytest
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
