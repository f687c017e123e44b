"""The Automation-API plumbing of the smoke test: CLI, throwaway stack, config, results.

Nothing here talks to Docker; the unit tests run it against a fake `pulumi` executable.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto
from semver import VersionInfo

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Not copied into the throwaway project: the virtualenv is shared, the rest is local state.
NOT_COPIED = (
    ".venv",
    ".git",
    "backups",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".benchmark-*",
    "Pulumi.*.yaml",
)
MINIMUM_CLI = "3.150.0"


class CannotRun(Exception):
    """The smoke test cannot run on this machine; the message says why and what to do."""


class SmokeFailed(Exception):
    """A step of the smoke test failed; the message names the step and Pulumi's last words."""


def catalogizer_home() -> Path:
    return Path(os.environ.get("CATALOGIZER_HOME") or Path.home() / ".catalogizer")


def find_cli(home: Path | None = None) -> auto.PulumiCommand:
    """The Pulumi CLI on PATH, else the one deploy.sh installs into ~/.catalogizer/bin."""
    home = home or catalogizer_home()
    on_path = shutil.which("pulumi")
    installed = home / "bin" / "pulumi"
    minimum = VersionInfo.parse(MINIMUM_CLI)
    try:
        if on_path:
            return auto.PulumiCommand(version=minimum)
        if installed.is_file() and os.access(installed, os.X_OK):
            return auto.PulumiCommand(root=str(home), version=minimum)
    except Exception as exc:  # the SDK raises plain Exception/InvalidVersionError for an unusable CLI
        raise CannotRun(f"the Pulumi CLI at {on_path or installed} is not usable: {exc}") from exc
    raise CannotRun(
        f"the Pulumi CLI is not installed (not on PATH, not in {home / 'bin'}). The smoke test drives "
        "the real Pulumi engine; install the CLI (`./deploy.sh dev` offers the pinned version, or see "
        "https://www.pulumi.com/docs/install/) and rerun `./test.sh smoke`."
    )


def flatten_config(config: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> dict[str, auto.ConfigValue]:
    """A stack file's `config:` map as `config set-all --path` entries.

    `{"catalogizer:api": {"replicas": 2}}` -> `catalogizer:api.replicas=2`; a list becomes
    `catalogizer:alerts.webhookUrls[0]=...`, as `pulumi config set --path` spells it.
    """
    flat: dict[str, auto.ConfigValue] = {}

    def put(key: str, value: Any, top: str) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for name, inner in value.items():
                if "." in str(name):
                    raise ValueError(f"{key}: key {name!r} has a dot, which --path would split")
                put(f"{key}.{name}", inner, top)
            return
        if isinstance(value, list | tuple):
            for index, inner in enumerate(value):
                put(f"{key}[{index}]", inner, top)
            return
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        flat[key] = auto.ConfigValue(value=text, secret=top in secret_keys)

    for key, value in config.items():
        put(key, value, key)
    return flat


@dataclass(frozen=True)
class StepResult:
    """What one `up` or `destroy` reported: Pulumi's verdict, changes per operation, outputs."""

    step: str
    kind: str
    result: str
    changes: dict[str, int]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]
    seconds: float

    def line(self, detail: str = "") -> str:
        changes = ", ".join(f"{count} {op}" for op, count in sorted(self.changes.items())) or "no changes"
        extra = f"; {detail}" if detail else ""
        return f"[smoke] {self.step}: {self.seconds:.1f}s, {self.result} ({changes}{extra})"


def parse_result(step: str, result: auto.UpResult | auto.DestroyResult, seconds: float) -> StepResult:
    summary = result.summary
    outputs = getattr(result, "outputs", {}) or {}
    return StepResult(
        step=step,
        kind=summary.kind,
        result=summary.result,
        changes={op: int(n) for op, n in (summary.resource_changes or {}).items()},
        outputs={name: out.value for name, out in outputs.items()},
        secret_outputs=frozenset(name for name, out in outputs.items() if out.secret),
        seconds=seconds,
    )


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass
class ThrowawayStack:
    """A stack of its own: a copy of the project, a local backend and passphrase file in `root`.

    `close()` destroys nothing (the scenarios do that); it removes the stack from the backend
    and deletes `root`, so nothing of the run is left behind.
    """

    root: Path
    cli: auto.PulumiCommand
    name: str = field(default_factory=lambda: f"smoke-{secrets.token_hex(4)}")
    log: Callable[[str], None] = print
    project_dir: Path = PROJECT_DIR

    def __post_init__(self) -> None:
        self.work_dir = self.root / "project"
        self.state_dir = self.root / "state"
        self.passphrase_file = self.root / "passphrase"
        self.stack: auto.Stack | None = None

    def open(self) -> auto.Stack:
        shutil.copytree(self.project_dir, self.work_dir, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
        self.state_dir.mkdir(parents=True)
        fd = os.open(self.passphrase_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        runtime = auto.ProjectRuntimeInfo(
            name="python",
            # The project's own virtualenv, not a new one inside the copy.
            options={"toolchain": "pip", "virtualenv": str(self.project_dir / ".venv")},
        )
        workspace = auto.LocalWorkspace(
            work_dir=str(self.work_dir),
            pulumi_command=self.cli,
            project_settings=auto.ProjectSettings(name="catalogizer", runtime=runtime),
            # Secrets and the backend reach the CLI through its environment, never its arguments.
            env_vars={
                "PULUMI_BACKEND_URL": f"file://{self.state_dir}",
                "PULUMI_CONFIG_PASSPHRASE_FILE": str(self.passphrase_file),
                "PULUMI_SKIP_UPDATE_CHECK": "true",
            },
        )
        self.stack = auto.Stack.create(self.name, workspace)
        return self.stack

    def configure(self, config: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> None:
        assert self.stack is not None, "open() first"
        self.stack.set_all_config(flatten_config(config, secret_keys), path=True)

    def up(self, step: str) -> StepResult:
        assert self.stack is not None, "open() first"
        started = time.monotonic()
        try:
            result = self.stack.up(on_output=self.log, color="never")
        except auto.CommandError as exc:
            raise SmokeFailed(f"{step}: pulumi up failed:\n{_tail(str(exc))}") from exc
        parsed = parse_result(step, result, time.monotonic() - started)
        if parsed.result != "succeeded":
            raise SmokeFailed(f"{step}: pulumi up reported {parsed.result!r}")
        return parsed

    def destroy(self, step: str) -> StepResult:
        """`pulumi destroy --exclude-protected`: the data volumes are protected by design."""
        assert self.stack is not None, "open() first"
        started = time.monotonic()
        try:
            result = self.stack.destroy(on_output=self.log, color="never", exclude_protected=True)
        except auto.CommandError as exc:
            raise SmokeFailed(f"{step}: pulumi destroy failed:\n{_tail(str(exc))}") from exc
        parsed = parse_result(step, result, time.monotonic() - started)
        if parsed.result != "succeeded":
            raise SmokeFailed(f"{step}: pulumi destroy reported {parsed.result!r}")
        return parsed

    def close(self) -> list[str]:
        """Removes the stack from the backend and deletes everything under `root`; returns problems."""
        problems: list[str] = []
        if self.stack is not None:
            try:
                self.stack.workspace.remove_stack(self.name, force=True)
            except auto.CommandError as exc:
                problems.append(f"stack rm {self.name}: {_tail(str(exc), 3)}")
        shutil.rmtree(self.root, ignore_errors=True)
        if self.root.exists():
            problems.append(f"could not remove {self.root}")
        return problems
