"""A test-only deployment engine: the unmodified program, carried out for real.

`Rehearsal.up()` runs __main__.py under Pulumi's own mock runtime (`set_mocks`) with a
monitor that, for every resource the SDK registers, does what `pulumi up` and the
provider would do to the real Docker engine: create, update, replace (delete-before-replace
or create-before-delete), or leave alone, judged against a state file kept between runs.
The SDK registers a resource only once its inputs and `depends_on` have resolved, so doing
the work inside RegisterResource keeps the program's dependency order; independent
resources run concurrently, as the engine's parallel steps do.

This module is the engine (pulumi/pulumi pkg/resource/deploy: step generation, up, destroy); its
other parts are engine_snapshot.py (the snapshot), engine_providers.py (which provider carries out
a resource) and engine_run.py (step execution); the providers live in providers_*.py. Any resource
type, input or resource option that is not implemented is REFUSED with an error naming the resource
and the input. README.md beside this file has the fidelity table (behaviour, upstream source, test).
"""

from __future__ import annotations

import gc
import runpy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pulumi
from engine_base import (
    INIT_ERROR_KEY,
    Change,
    DeploymentFailed,
    Event,
    InitError,
    Inputs,
    NotCarriedOut,
    Provider,
    Refused,
    RehearsalError,
    path_contains,
)
from engine_providers import PROVIDERS, ProviderResolution, _docker_client
from engine_run import RehearsalMonitor, Run, check_options, drain_runtime, install_exception_handler
from engine_snapshot import Snapshot
from program import MAIN, PROJECT_DIR, _as_config_value, _cwd
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

__all__ = ["DeploymentFailed", "Event", "Refused", "Rehearsal", "RehearsalError"]

# --- the engine --------------------------------------------------------------------------------


@dataclass
class UpResult:
    outputs: dict[str, Any]
    events: list[Event]
    seconds: float

    def actions(self, action: str) -> list[str]:
        return [e.name for e in self.events if e.action == action]

    def changes(self) -> list[Event]:
        """The steps that changed something: creates, updates, replacements, deletes."""
        return [e for e in self.events if e.action in ("create", "update", "replace-delete", "delete")]


@dataclass
class DestroyResult:
    deleted: list[str]
    kept_protected: list[str]
    retained: list[str]
    events: list[Event] = field(default_factory=list)


class Rehearsal(ProviderResolution, Snapshot):
    """One stack: its state file, the Docker client, and the up/destroy operations."""

    def __init__(
        self,
        state_path: Path,
        project_dir: Path = PROJECT_DIR,
        client: docker.DockerClient | None = None,
        program: Path = MAIN,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.state_path = state_path
        self.project_dir = project_dir
        self.program = program
        self._default_docker = client or _docker_client()
        self._clients: dict[str, docker.DockerClient] = {}
        self._local = threading.local()
        self.providers = {p.token: p(self) for p in PROVIDERS}
        self.built_images: set[str] = set()
        self._log = log or (lambda line: None)
        self._lock = threading.RLock()
        self._seq = 0
        self.current: dict[str, dict[str, Any]] = {}
        self.pending: list[dict[str, Any]] = []
        self.outputs: dict[str, Any] = {}
        self.run = Run()

    def log(self, line: str) -> None:
        self._log(f"[rehearsal] {line}")

    def _event(self, run: Run, action: str, urn: str, detail: str = "") -> None:
        event = Event(time.time(), action, urn, detail)
        with self._lock:
            run.events.append(event)
        self.log(f"{action:<14} {event.name}{' ' + detail if detail else ''}")

    def _fail(self, run: Run, urn: str, message: str) -> None:
        with self._lock:
            run.failures.append(message)
        self._event(run, "failed", urn, message.splitlines()[0][:200])

    # -- registration ----------------------------------------------------------------------
    def _register(self, run: Run, urn: str, request: Any, inputs: Inputs) -> tuple[str, Inputs]:
        where = f"{request.name} ({request.type})"
        check_options(where, request)
        # pkg/resource/deploy/source_eval.go, RegisterResource: the option counts when the SDK says it
        # is defined (the Python SDK sends deleteBeforeReplaceDefined) or when it is true.
        dbr_defined = bool(request.deleteBeforeReplaceDefined or request.deleteBeforeReplace)
        entry_base = {
            "urn": urn,
            "type": request.type,
            "name": request.name,
            "parent": request.parent,
            "custom": request.custom,
            "dependencies": list(request.dependencies),
            "protect": bool(request.protect),
            "retain_on_delete": bool(request.retainOnDelete),
            "delete_before_replace": bool(request.deleteBeforeReplace) if dbr_defined else None,
            "replace_on_changes": list(request.replaceOnChanges),
        }
        if request.custom and request.type.startswith("pulumi:providers:"):
            with self._lock:
                run.registered.add(urn)
            return self._explicit_provider(where, request, urn, inputs)
        host = self._provider_host(where, request.provider) if request.custom else None
        if host:
            entry_base["provider_host"] = host
        if not request.custom:
            with self._lock:
                run.registered.add(urn)
                self.current[urn] = {**entry_base, "id": "", "inputs": {}, "outputs": {}, "seq": self._next_seq()}
            return "", {}
        provider = self.providers.get(request.type)
        if provider is None:
            raise Refused(f"{where}: resource type {request.type} is not implemented by the rehearsal engine")
        inputs = provider.check(where, inputs)
        with self._lock:
            if run.failures:
                self._event(run, "skipped", urn, "the deployment already failed")
                raise NotCarriedOut(f"{where}: not carried out, the deployment already failed")
            run.registered.add(urn)
            old = self.current.get(urn)
        try:
            with self._provider_client(host):
                return self._step(run, urn, provider, old, inputs, entry_base)
        except InitError as exc:
            # step.go CreateStep.Apply: a partial failure is recorded with its init errors, then fails.
            with self._lock:
                self.current[urn] = self._entry(entry_base, exc.change, inputs, [exc.reason])
                self._save()
            raise RehearsalError(f"{where}: {exc.reason}") from None
        except Refused:
            raise
        except RehearsalError as exc:
            raise RehearsalError(f"{where}: {exc}") from None

    def _entry(
        self, base: Mapping[str, Any], change: Change, inputs: Inputs, init_errors: list[str] | None = None
    ) -> dict[str, Any]:
        return {
            **base,
            "id": change.id,
            "inputs": inputs,
            "outputs": change.outputs,
            "init_errors": list(init_errors or []),
            "seq": self._next_seq(),
        }

    def _step(
        self, run: Run, urn: str, provider: Provider, old: dict[str, Any] | None, inputs: Inputs, base: dict
    ) -> tuple[str, Inputs]:
        """pkg/resource/deploy/step_generator.go, generateSteps: create, same, update or replace."""
        if old is None or not old.get("custom"):
            change = provider.create(base["name"], inputs)
            with self._lock:
                self.current[urn] = self._entry(base, change, inputs)
                self._event(run, "create", urn, change.outputs.get("name", "") if "name" in change.outputs else "")
                self._save()
            return change.id, change.outputs
        diff = provider.diff(old, inputs)
        init_errors = list(old.get("init_errors") or [])
        # step_generator.go applyReplaceOnChanges: a changed key or detailed path covered by a
        # `replace_on_changes` path becomes a replace key; an old init error becomes one when a path
        # covers "#initerror" (e.g. "*" or "#initerror").
        replace_keys = set(diff.replace_keys)
        patterns = base["replace_on_changes"]
        replace_keys |= {k for k in diff.changed | diff.paths if any(path_contains(p, k) for p in patterns)}
        has_changes = bool(diff.changed)
        if init_errors and any(path_contains(p, INIT_ERROR_KEY) for p in patterns):
            replace_keys.add(INIT_ERROR_KEY)
            has_changes = True
        if has_changes and replace_keys:
            return self._replace(run, urn, provider, old, inputs, base, diff.delete_before_replace, replace_keys)
        if has_changes or init_errors:
            # An update; with no changes but init errors it is the engine's empty update, which ends
            # in the provider returning the old state and the init error being cleared.
            change = provider.update(base["name"], old, inputs, diff)
            with self._lock:
                # pkg/backend/snapshot.go updateSnapshotMutation.End: markNew appends the resource to
                # the new snapshot when its step completes, so it now comes after what it depends on
                # (a replaced secret's new side, say) and a later destroy deletes it before them.
                self.current[urn] = self._entry(base, change, inputs)
                detail = ",".join(sorted(diff.changed)) or "empty update (clears the init error)"
                self._event(run, "update", urn, detail)
                self._save()
            return change.id, change.outputs
        with self._lock:
            # sameSnapshotMutation.End: markNew too; a `same` resource moves to its place in this run.
            self.current[urn] = {**old, **base, "seq": self._next_seq()}
            self._event(run, "same", urn)
            self._save()
        return old["id"], old["outputs"]

    def _replace(
        self,
        run: Run,
        urn: str,
        provider: Provider,
        old: dict[str, Any],
        inputs: Inputs,
        base: dict,
        provider_dbr: bool,
        replace_keys: set[str],
    ) -> tuple[str, Inputs]:
        keys = ", ".join(sorted(replace_keys))
        if old.get("protect") and base["protect"]:
            raise RehearsalError(f"unable to replace resource {urn} as it is currently marked for protection ({keys})")
        # step_generator.go: the provider's delete-before-replace answer, unless the program set the option.
        dbr = provider_dbr if base["delete_before_replace"] is None else base["delete_before_replace"]
        mode = "delete-before-replace" if dbr else "create-before-delete"
        if dbr:
            provider.delete(old)
            with self._lock:
                del self.current[urn]
                self._event(run, "replace-delete", urn, mode)
                self._save()
            change = provider.create(base["name"], inputs)
        else:
            # The old side is deleted after the program (deployment_executor.go performPostSteps);
            # after a failed run it stays a pending delete for the next one (GenerateDeletes). A
            # create that fails outright leaves the old resource current.
            try:
                change = provider.create(base["name"], inputs)
            except InitError:
                with self._lock:
                    self.pending.append(old)
                raise
            with self._lock:
                self.pending.append(old)
        with self._lock:
            self.current[urn] = self._entry(base, change, inputs)
            self._event(run, "create", urn, f"replacement ({mode}; {keys})")
            self._save()
        return change.id, change.outputs

    # -- deletion ---------------------------------------------------------------------------
    def _delete_entry(self, run: Run, urn: str, entry: dict[str, Any], why: str) -> None:
        if entry.get("custom"):
            if entry.get("retain_on_delete"):
                # step.go DeleteStep.Apply: retainOnDelete drops it from the state only.
                self._event(run, "retain", urn, f"{why}; retainOnDelete: left in place")
            elif entry.get("provider_resource"):
                self._event(run, "delete", urn, why)  # a provider resource holds nothing to delete
            else:
                with self._provider_client(entry.get("provider_host")):
                    self.providers[entry["type"]].delete(entry)
                self._event(run, "delete", urn, why)
        self._save()

    def _finish(self, run: Run) -> None:
        """deployment_executor.go performPostSteps / step_generator.go GenerateDeletes, after a
        successful program: old sides of replacements and resources no longer declared, in reverse
        order of creation (dependents first)."""
        doomed: list[tuple[int, str, dict[str, Any], str]] = []
        for entry in self.pending:
            doomed.append((entry["seq"], self._urn_of(entry), entry, "replaced"))
        for urn, entry in list(self.current.items()):
            if urn not in run.registered:
                doomed.append((entry["seq"], urn, entry, "no longer declared"))
        for _, urn, entry, why in sorted(doomed, key=lambda d: -d[0]):
            if why != "replaced" and entry.get("protect") and entry.get("custom"):
                raise RehearsalError(
                    f"unable to delete resource {urn} as it is currently marked for protection "
                    "(it is no longer declared)"
                )
            self._delete_entry(run, urn, entry, why)
            if why == "replaced":
                self.pending.remove(entry)
            else:
                del self.current[urn]
            self._save()

    @staticmethod
    def _urn_of(entry: Mapping[str, Any]) -> str:
        return entry.get("urn", entry["name"])

    # -- operations -------------------------------------------------------------------------------
    def up(self, stack: str, config: Mapping[str, Any], secret_keys: tuple[str, ...] = ()) -> UpResult:
        """`pulumi up`: raises DeploymentFailed listing every failed step of this run.

        It returns only when every step it started has finished (a failed run included)."""
        started = time.monotonic()
        run = self._begin()
        full = {(k if ":" in k else f"catalogizer:{k}"): _as_config_value(v) for k, v in config.items()}
        pulumi.runtime.set_all_config(full, [k if ":" in k else f"catalogizer:{k}" for k in secret_keys])
        monitor = RehearsalMonitor(self, run)
        runtime_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(monitor.mocks, project="catalogizer", stack=stack, preview=False, monitor=monitor)
        runtime_settings.SETTINGS.rpc_manager.clear()
        runtime_settings.SETTINGS.outputs.clear()
        error: BaseException | None = None
        install_exception_handler()
        with _cwd(self.project_dir):
            try:
                _sync_await(run_pulumi_func(lambda: runpy.run_path(str(self.program), run_name="__main__")))
            except Exception as exc:
                error = exc
            finally:
                # Steps still running finish inside this run; their failures are this run's.
                drain_runtime(run)
                gc.collect()
                self._untouched_last(run)
        if error is None and not run.failures:
            try:
                self.outputs = self._stack_outputs()
                self._finish(run)
            except Exception as exc:
                error = exc
        self._save()
        seconds = time.monotonic() - started
        if error is not None or run.failures:
            failures = list(run.failures) or [f"{type(error).__name__}: {error}"]
            raise DeploymentFailed(
                "update failed:\n" + "\n".join(f"  - {f}" for f in failures), failures, list(run.events)
            )
        return UpResult(dict(self.outputs), list(run.events), seconds)

    @staticmethod
    def _stack_outputs() -> dict[str, Any]:
        root = runtime_settings.get_root_resource()
        outputs: dict[str, Any] = {}
        for name, value in getattr(root, "outputs", {}).items():
            outputs[name] = _sync_await(pulumi.Output.from_input(value).future())
        return outputs

    def destroy(self, exclude_protected: bool = True) -> DestroyResult:
        """`pulumi destroy --exclude-protected`: protected resources stay (in state and for real).

        step.go DeleteStep.Apply: a plain destroy fails on a protected resource."""
        run = self._begin()
        protected = [u for u, e in self.current.items() if e.get("protect")]
        if protected and not exclude_protected:
            raise RehearsalError(
                "unable to delete protected resources: " + ", ".join(protected) + " (use exclude_protected)"
            )
        result = DestroyResult([], [], [])
        doomed = [(e["seq"], self._urn_of(e), e, True) for e in self.pending]
        doomed += [(e["seq"], u, e, False) for u, e in self.current.items()]
        for _, urn, entry, is_pending in sorted(doomed, key=lambda d: -d[0]):
            if not is_pending and entry.get("protect"):
                # Its parent components stay too, so the URNs stay stable for the next `up`.
                self._event(run, "protect-keep", urn, "protected: not deleted")
                if entry.get("custom"):
                    result.kept_protected.append(entry["outputs"].get("name") or entry["name"])
                continue
            if not is_pending and not entry.get("custom") and self._has_protected_child(urn):
                continue
            if entry.get("custom") and entry.get("retain_on_delete"):
                result.retained.append(entry["name"])
            elif entry.get("custom"):
                result.deleted.append(entry["name"])
            self._delete_entry(run, urn, entry, "destroy")
            if is_pending:
                self.pending.remove(entry)
            else:
                del self.current[urn]
            self._save()
        self.outputs = {}
        self._save()
        result.events = list(run.events)
        return result

    def _has_protected_child(self, urn: str) -> bool:
        return any(e.get("parent") == urn and e.get("protect") for e in self.current.values())
