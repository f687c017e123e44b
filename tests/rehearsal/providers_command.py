"""pulumi-command `local.Command` (pulumi/pulumi-command v1.2.1, provider/pkg/provider/local/)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Mapping
from typing import Any

from engine_base import Change, Diff, Inputs, Provider, RehearsalError, Spec, changed_keys, changed_paths

# The values of the `logging` input (local/logging.go, Logging).
_LOG_STDOUT = {"stdout", "stdoutAndStderr"}
_LOG_STDERR = {"stderr", "stdoutAndStderr"}


class CommandProvider(Provider):
    token = "command:local:Command"
    spec = Spec({"create", "update", "delete", "dir", "environment", "triggers", "interpreter", "logging"})

    def diff(self, old: Mapping[str, Any], inputs: Inputs) -> Diff:
        # pulumi-command common/inputs.go: `triggers` is tagged replaceOnChanges; every other input
        # is an in-place update (the go-provider's default diff).
        changed = changed_keys(old["inputs"], inputs)
        replace = {k for k in changed if k == "triggers"}
        return Diff(changed, changed_paths(old["inputs"], inputs), replace, False)

    def _run(self, name: str, command: str, inputs: Inputs, previous: Mapping[str, Any] | None = None) -> Inputs:
        # local/commandOutputs.go, run: `/bin/sh -c` unless `interpreter`; cwd `dir` or ours;
        # environment = ours + `environment`, plus the previous stdout/stderr when not empty.
        argv = [*(inputs.get("interpreter") or ["/bin/sh", "-c"]), command]
        env = {**os.environ, **{k: str(v) for k, v in (inputs.get("environment") or {}).items()}}
        for key, value in (("PULUMI_COMMAND_STDOUT", "stdout"), ("PULUMI_COMMAND_STDERR", "stderr")):
            if previous and previous.get(value):
                env[key] = previous[value]
        cwd = inputs.get("dir") or os.getcwd()
        started = time.time()
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        self.r.log(f"command {name}: exit {result.returncode} in {time.time() - started:.1f}s")
        # run: output goes to the engine's log unless `logging` excludes it (default: both streams).
        logging = inputs.get("logging")
        for stream, text, wanted in (("stdout", result.stdout, _LOG_STDOUT), ("stderr", result.stderr, _LOG_STDERR)):
            if logging is None or logging in wanted:
                for line in text.splitlines():
                    self.r.log(f"command {name} {stream}: {line}")
        if result.returncode != 0:
            # run: the error carries both streams (interleaved for real; here stdout, then stderr).
            both = (result.stdout + result.stderr).rstrip("\n")
            raise RehearsalError(f"exit status {result.returncode}: running {command!r}:\n{both}")
        # run: each output stream loses one trailing newline (strings.TrimSuffix).
        return {**inputs, "stdout": result.stdout.removesuffix("\n"), "stderr": result.stderr.removesuffix("\n")}

    def create(self, name: str, inputs: Inputs) -> Change:
        # local/commandController.go, Create: no `create` command, nothing runs.
        if not inputs.get("create"):
            return Change(uuid.uuid4().hex, {**inputs, "stdout": "", "stderr": ""})
        return Change(uuid.uuid4().hex, self._run(name, inputs["create"], inputs))

    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs, diff: Diff) -> Change:
        # commandController.go, Update: `update` if set, else `create` again; neither, nothing runs.
        command = inputs.get("update") or inputs.get("create")
        if not command:
            return Change(old["id"], {**old["outputs"], **inputs})
        return Change(old["id"], self._run(name, command, inputs, old["outputs"]))

    def delete(self, entry: Mapping[str, Any]) -> None:
        # commandController.go, Delete: runs `delete` only when set.
        if entry["inputs"].get("delete"):
            self._run(entry["name"], entry["inputs"]["delete"], entry["outputs"], entry["outputs"])
