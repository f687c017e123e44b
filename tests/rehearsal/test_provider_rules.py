"""Provider rules the scenarios do not isolate: container updates in place (healthcheck, memory
and memory_swap), delete-first replacement, `replace_on_changes`, `volumes`, and the build
context's .dockerignore rules."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from docker_harness import DockerScope
from images import tags
from providers_docker_image import IgnoreRules, context_digest, read_ignore_file
from rehearsal_engine import Rehearsal, UpResult
from rehearsal_stack import say

PROGRAM = Path(__file__).resolve().parent / "programs" / "container_updates.py"
MB = 1024 * 1024


def _steps(result: UpResult) -> list[tuple[str, str]]:
    return [(e.action, e.name) for e in result.changes()]


def test_container_updates_and_replacements(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    host_dir = tmp_path / "data"
    host_dir.mkdir()
    (host_dir / "marker").write_text("from the host")
    with DockerScope(test_name=request.node.nodeid) as scope:
        name = scope.name("rules-box")
        scope.track_container(name)
        config: dict[str, Any] = {
            "rules:name": name,
            "rules:image": tags.REDIS,
            "rules:command": json.dumps(["sleep", "600"]),
            "rules:interval": "5s",
            "rules:memory": "64",
            "rules:memorySwap": "64",
            "rules:hostDir": str(host_dir),
        }
        engine = Rehearsal(tmp_path / "state.json", client=scope.client, program=PROGRAM)
        try:
            engine.up("rules", config)
            box = scope.client.containers.get(name)
            first_id = box.id
            # volumes: a read-only bind; memory and memory_swap in MB.
            assert box.exec_run(["cat", "/data/marker"]).output == b"from the host"
            assert box.exec_run(["touch", "/data/x"]).exit_code != 0
            assert (box.attrs["HostConfig"]["Memory"], box.attrs["HostConfig"]["MemorySwap"]) == (64 * MB, 64 * MB)

            # A health-check edit is an in-place update that never reaches Docker.
            result = engine.up("rules", {**config, "rules:interval": "7s"})
            assert _steps(result) == [("update", "box")]
            box = scope.client.containers.get(name)
            assert box.id == first_id and box.attrs["Config"]["Healthcheck"]["Interval"] == 5 * 10**9

            # memory and memory_swap are raised in place, together.
            config.update({"rules:interval": "7s", "rules:memory": "160", "rules:memorySwap": "160"})
            result = engine.up("rules", config)
            assert _steps(result) == [("update", "box")]
            box = scope.client.containers.get(name)
            assert box.id == first_id
            assert (box.attrs["HostConfig"]["Memory"], box.attrs["HostConfig"]["MemorySwap"]) == (160 * MB, 160 * MB)

            # replace_on_changes=["healthcheck"] makes the same kind of edit a replacement; the program
            # sets delete-first itself (a replacement from replace_on_changes alone is not delete-first
            # by the provider, and the fixed name would clash).
            config.update({"rules:replaceOnHealthcheck": "true", "rules:deleteFirst": "true"})
            engine.up("rules", config)
            result = engine.up("rules", {**config, "rules:interval": "9s"})
            assert _steps(result) == [("replace-delete", "box"), ("create", "box")]
            box = scope.client.containers.get(name)
            assert box.id != first_id and box.attrs["Config"]["Healthcheck"]["Interval"] == 9 * 10**9
            config["rules:interval"] = "9s"

            # A ForceNew input with the option unset: the provider's delete-first answer.
            config.pop("rules:deleteFirst")
            result = engine.up("rules", {**config, "rules:command": json.dumps(["sleep", "700"])})
            assert _steps(result) == [("replace-delete", "box"), ("create", "box")]
        finally:
            with contextlib.suppress(Exception):
                engine.destroy()
    say(request.config, f"[rehearsal] provider rules: {time.monotonic() - started:.1f}s, passed")


def test_dockerignore_rules_decide_the_context_digest(tmp_path: Path) -> None:
    rules = IgnoreRules(read_ignore_file("# comment\n*\n!scripts/\n!dockerfiles/\n**/__pycache__\n"))
    assert rules.excluded("README.md") and rules.excluded("components/api.py")
    assert not rules.excluded("scripts/backup.py") and not rules.excluded("dockerfiles/x/Dockerfile")
    assert rules.excluded("scripts/__pycache__/backup.cpython-311.pyc")
    # Exceptions after a broader rule re-include; a later rule wins.
    assert not IgnoreRules(["*.md", "!README.md"]).excluded("README.md")
    leading_slash = IgnoreRules(read_ignore_file("/tmp/**\n!tmp/keep\n"))
    assert leading_slash.excluded("tmp/a/b") and not leading_slash.excluded("tmp/keep")
    assert not IgnoreRules(["tmp/*"]).excluded("x/tmp/y")

    context = tmp_path / "ctx"
    (context / "scripts").mkdir(parents=True)
    (context / "dockerfiles").mkdir()
    dockerfile = context / "dockerfiles" / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    (context / "scripts" / "hook.py").write_text("print(1)\n")
    (context / ".dockerignore").write_text("*\n!scripts/\n!dockerfiles/\n**/__pycache__\n")
    before = context_digest(context, dockerfile)
    (context / "scripts" / "__pycache__").mkdir()
    (context / "scripts" / "__pycache__" / "hook.cpython-311.pyc").write_bytes(b"\0cache")
    (context / "notes.txt").write_text("ignored")
    assert context_digest(context, dockerfile) == before
    (context / "scripts" / "hook.py").write_text("print(2)\n")
    assert context_digest(context, dockerfile) != before
    # <Dockerfile>.dockerignore takes precedence over the context's: with it, scripts/ is ignored.
    Path(str(dockerfile) + ".dockerignore").write_text("scripts/\n")
    with_own_rules = context_digest(context, dockerfile)
    (context / "scripts" / "hook.py").write_text("print(3)\n")
    assert context_digest(context, dockerfile) == with_own_rules
    (context / "notes.txt").write_text("now part of the context")
    assert context_digest(context, dockerfile) != with_own_rules
