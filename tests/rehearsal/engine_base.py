"""What the rehearsal engine and its providers share: errors, diffs, input specs, helpers.

The split mirrors what is imitated: `rehearsal_engine.py` is the Pulumi engine (steps), with
`engine_snapshot.py` (state), `engine_providers.py` (provider resolution) and `engine_run.py` (step
execution), `providers_docker.py` / `providers_docker_image.py` are pulumi-docker (the Terraform
docker provider through the bridge, and the native `Image`), `providers_command.py` is
pulumi-command, `providers_misc.py` is pulumi-random and pulumi-tls. README.md beside this file has
the fidelity table (its module map lists every file): every modelled behaviour with the upstream
source it follows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal_engine import Rehearsal

Inputs = dict[str, Any]

# pulumi/pulumi pkg/resource/deploy/step_generator.go, initErrorSpecialKey: the property path a
# `replace_on_changes` entry must cover to turn a recorded init error into a replacement.
INIT_ERROR_KEY = "#initerror"


class RehearsalError(Exception):
    """A resource could not be carried out; the message names it."""


class Refused(RehearsalError):
    """The program uses a resource type, input or option this engine does not implement."""


class NotCarriedOut(RehearsalError):
    """A step the engine no longer starts because an earlier one failed (as `pulumi up` stops)."""


@dataclass
class Event:
    at: float
    action: str  # create, update, replace-delete, delete, same, retain, protect-keep, failed, skipped
    urn: str
    detail: str = ""

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


class DeploymentFailed(RehearsalError):
    """A run failed: `failures` lists every step of that run that failed (the engine reports all)."""

    def __init__(self, message: str, failures: list[str], events: list[Event]) -> None:
        super().__init__(message)
        self.failures = failures
        self.events = events


@dataclass
class Change:
    """What the provider reports back: physical id and outputs."""

    id: str
    outputs: Inputs


class InitError(RehearsalError):
    """The provider created the resource but failed to initialise it (a partial failure).

    pulumi/pulumi-terraform-bridge pkg/tfbridge/provider.go, Create: a create that fails after the
    resource got an ID is returned as an initialization error with the partial state; pulumi/pulumi
    pkg/resource/deploy/step.go, CreateStep.Apply: the engine records the resource with InitErrors
    and fails the step.
    """

    def __init__(self, change: Change, reason: str) -> None:
        super().__init__(reason)
        self.change = change
        self.reason = reason


@dataclass
class Diff:
    """A provider's answer to Diff: what changed, what forces a replacement, and its delete-first wish."""

    changed: set[str] = field(default_factory=set)  # top-level input keys (ChangedKeys)
    paths: set[str] = field(default_factory=set)  # leaf property paths (DetailedDiff keys)
    replace_keys: set[str] = field(default_factory=set)
    delete_before_replace: bool = False


# --- input checking -------------------------------------------------------------------


class Spec:
    """Allowed input keys; nested dicts/lists of dicts get their own Spec."""

    def __init__(self, keys: set[str], nested: Mapping[str, Spec] | None = None) -> None:
        self.keys = keys
        self.nested = dict(nested or {})

    def check(self, where: str, value: Mapping[str, Any], path: str = "") -> None:
        for key, inner in value.items():
            full = f"{path}.{key}" if path else key
            if key not in self.keys:
                raise Refused(f"{where}: input '{full}' is not implemented by the rehearsal engine; refusing to deploy")
            spec = self.nested.get(key)
            if spec is None or inner is None:
                continue
            items = inner if isinstance(inner, list) else [inner]
            for index, item in enumerate(items):
                if isinstance(item, Mapping):
                    spec.check(where, item, f"{full}[{index}]" if isinstance(inner, list) else full)


def _norm(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _norm(x) for k, x in value.items() if x is not None}
    if isinstance(value, list):
        return [_norm(x) for x in value]
    return value


def canonical(value: Any) -> str:
    return json.dumps(_norm(value), sort_keys=True)


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    keys = set(old) | set(new)
    return {k for k in keys if canonical(old.get(k)) != canonical(new.get(k))}


def changed_paths(old: Any, new: Any, path: str = "") -> set[str]:
    """Leaf property paths that differ, in Pulumi's path syntax (`a.b[0].c`)."""
    old, new = _norm(old), _norm(new)
    if isinstance(old, dict) and isinstance(new, dict):
        found: set[str] = set()
        for key in set(old) | set(new):
            found |= changed_paths(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = set()
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found |= changed_paths(a, b, f"{path}[{index}]")
        return found
    return set() if canonical(old) == canonical(new) else {path}


def parse_path(text: str) -> list[str | int]:
    """A property path as pulumi/pulumi sdk/go/common/resource/properties_path.go ParsePropertyPath
    reads the forms programs use: `a.b`, `a[0]`, `a[*]`, `*`, `#initerror`."""
    parts: list[str | int] = []
    for dotted in text.replace("[", ".[").split("."):
        if not dotted:
            continue
        if dotted.startswith("[") and dotted.endswith("]"):
            inner = dotted[1:-1].strip('"')
            parts.append(int(inner) if inner.isdigit() else inner)
        else:
            parts.append(dotted)
    return parts


def path_contains(pattern: str, path: str) -> bool:
    """pulumi/pulumi properties_path.go PropertyPath.Contains: `*` matches any one key or index."""
    p, other = parse_path(pattern), parse_path(path)
    if len(other) < len(p):
        return False
    for want, have in zip(p, other, strict=False):
        if want == "*" and isinstance(have, str | int):
            continue
        if isinstance(want, int) != isinstance(have, int) or want != have:
            return False
    return True


def to_int(value: Any, default: int = 0) -> int:
    return default if value is None else int(value)


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration for the forms the provider accepts ("5s", "1m30s", "250ms")."""
    total, number, i = 0.0, "", 0
    if text in ("", "0"):
        return 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if text.startswith(u, i)), None)
        if unit is None or not number:
            raise ValueError(f"invalid duration {text!r}")
        total += float(number) * _DURATION_UNITS[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"invalid duration {text!r} (missing unit)")
    return int(total * 1e9)


# --- the provider interface -------------------------------------------------------------------


class Provider:
    """One resource type: Check, Diff, Create, Update, Delete, as a Pulumi provider plugin has them."""

    token = ""
    spec = Spec(set())
    # Inputs the provider changes in place; any other changed input is a replace key.
    updatable: frozenset[str] = frozenset()
    # Bridged resources with an auto-named `name`: pulumi-terraform-bridge pkg/tfbridge/schema.go,
    # nameRequiresDeleteBeforeReplace: a replacement is delete-first when `name` was set by the program.
    autonamed = False
    # pulumi-docker provider/resources.go: `DeleteBeforeReplace: true` on the resource's info.
    schema_delete_before_replace = False

    def __init__(self, rehearsal: Rehearsal) -> None:
        self.r = rehearsal

    def check(self, where: str, inputs: Inputs) -> Inputs:
        """Validates and returns the inputs the provider works with (Check may add defaults)."""
        self.spec.check(where, inputs)
        return inputs

    def diff(self, old: Mapping[str, Any], inputs: Inputs) -> Diff:
        changed = changed_keys(old["inputs"], inputs)
        replace = changed - self.updatable
        # pulumi-terraform-bridge pkg/tfbridge/provider.go, Diff: delete-before-replace only when the
        # provider itself replaces (replace keys) and the schema or the name rule asks for it.
        dbr = bool(replace) and (self.schema_delete_before_replace or (self.autonamed and bool(inputs.get("name"))))
        return Diff(changed, changed_paths(old["inputs"], inputs), replace, dbr)

    def create(self, name: str, inputs: Inputs) -> Change:
        raise NotImplementedError

    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs, diff: Diff) -> Change:
        return Change(old["id"], {**old["outputs"], **inputs})

    def delete(self, entry: Mapping[str, Any]) -> None:
        raise NotImplementedError
