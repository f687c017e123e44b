"""A project folder laid out like an operator's host, for running the program under mocks."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from certs import CertPair, write_self_signed
from program import Deployment, ProgramFailed, run_program, stack_config


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merges `overrides` into a copy of `base`; a None value removes the key."""
    result = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        full = key if ":" in key else f"catalogizer:{key}"
        if value is None:
            result.pop(full, None)
        elif isinstance(value, dict) and isinstance(result.get(full), dict):
            inner = dict(result[full])
            for k, v in value.items():
                if v is None:
                    inner.pop(k, None)
                else:
                    inner[k] = v
            result[full] = inner
        else:
            result[full] = value
    return result


class Workspace:
    """A project folder with the sibling checkouts and ssl/ files the stack configs name."""

    def __init__(self, root: Path) -> None:
        self.project = root / "catalogizer-deploy"
        self.project.mkdir()
        for checkout in ("Catalogizer", "catalogizer", "no-submodules", "empty-submodules"):
            dockerfile = root / checkout / "catalog-api" / "Dockerfile"
            dockerfile.parent.mkdir(parents=True)
            dockerfile.write_text("FROM scratch\n")
        # Catalogizer's Dockerfile copies its git submodules, so settings refuse a checkout
        # without them: ../no-submodules lacks the folder, ../empty-submodules has what a
        # clone without --recurse-submodules leaves (empty folders).
        for checkout in ("Catalogizer", "catalogizer"):
            module = root / checkout / "submodules" / "config"
            module.mkdir(parents=True)
            (module / "go.mod").write_text("module digital.vasic.config\n")
        for name in ("assets", "config"):
            (root / "empty-submodules" / "submodules" / name).mkdir(parents=True)
        self.certs: CertPair = write_self_signed(
            self.project / "ssl", "catalogizer.example.com", ("catalogizer.example.com",), valid_days=365
        )

    def deploy(
        self,
        stack: str,
        overrides: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> Deployment:
        config = merged(stack_config(stack), overrides or {})
        config.update({f"catalogizer:{k}": v for k, v in (secrets or {}).items()})
        return run_program(stack, config, secret_keys=tuple(secrets or {}), cwd=self.project, **kw)

    def fails(self, stack: str, overrides: Mapping[str, Any] | None = None, **kw: Any) -> ProgramFailed:
        with pytest.raises(ProgramFailed) as caught:
            self.deploy(stack, overrides, **kw)
        return caught.value
