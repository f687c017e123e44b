"""The engine's run machinery: one run's steps and failures, the monitor the SDK registers
resources with, and what a run does when it ends (wait for its steps, settle the SDK's tasks).

pulumi/pulumi pkg/resource/deploy/step_executor.go is what this imitates: steps run in parallel,
a failure stops new steps, and the run ends after the running ones finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pulumi
from engine_base import Event, NotCarriedOut, Refused, RehearsalError
from program import _unwrap_secrets
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor, Mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

if TYPE_CHECKING:
    from rehearsal_engine import Rehearsal

# Resource options the engine does not implement; any of them set is refused.
_REFUSED_OPTIONS = {
    "ignoreChanges": "ignore_changes",
    "importId": "import_",
    "deletedWith": "deleted_with",
    "replace_with": "replace_with",
    # `provider` (one explicit provider resource) is checked by the engine itself (_register).
    "providers": "providers",
    "transforms": "transforms",
    "aliasURNs": "aliases",
}
# Message-typed request fields: refused when present.
_REFUSED_MESSAGE_OPTIONS = {
    "customTimeouts": "custom_timeouts",
    "replacement_trigger": "replacement_trigger",
    "hooks": "hooks",
}


# --- one run ---------------------------------------------------------------------------------


class Run:
    """One `up` or `destroy`: its events, its failures, and the steps it has started.

    pulumi/pulumi pkg/resource/deploy/step_executor.go: after a step fails the executor starts no
    new step, but waits for the steps already running (`WaitForCompletion`) and every failure is
    reported by that deployment. `wait_idle` is that wait; a step always belongs to the run that
    started it, so nothing of one run can land in the next.
    """

    def __init__(self) -> None:
        # The snapshot's last sequence number before this run (engine_snapshot.py, Snapshot._untouched_last).
        self.first_seq = 0
        self.events: list[Event] = []
        self.failures: list[str] = []
        self.registered: set[str] = set()
        self._inflight = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        with self._cond:
            self._inflight += 1
        try:
            yield
        finally:
            with self._cond:
                self._inflight -= 1
                self._cond.notify_all()

    @property
    def inflight(self) -> int:
        with self._cond:
            return self._inflight

    def wait_idle(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._inflight == 0)


# --- the monitor -----------------------------------------------------------------------------


class _NoMocks(Mocks):
    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        raise Refused(f"invoke {args.token}: function calls are not implemented by the rehearsal engine")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        raise Refused(f"{args.name} ({args.typ}): read/get of existing resources is not implemented")


class RehearsalMonitor(MockMonitor):
    def __init__(self, rehearsal: Rehearsal, run: Run) -> None:
        super().__init__(_NoMocks())
        self.rehearsal = rehearsal
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = _unwrap_secrets(rpc.deserialize_properties(request.object))
        with self.run.step():
            try:
                id_, outputs = self.rehearsal._register(self.run, urn, request, inputs)
            except NotCarriedOut as exc:
                _mark_reported(exc)
                raise
            except RehearsalError as exc:
                self.rehearsal._fail(self.run, urn, str(exc))
                _mark_reported(exc)
                raise
            except Exception as exc:
                message = f"{request.name} ({request.type}): {type(exc).__name__}: {exc}"
                self.rehearsal._fail(self.run, urn, message)
                error = RehearsalError(message)
                _mark_reported(error)
                raise error from exc
        obj = _sync_await(rpc.serialize_properties(outputs, {}))
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, id_, outputs)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)


def drain_runtime(run: Run, timeout: float = 120.0) -> None:
    """Waits for every step the run started, then settles the SDK's outstanding RPC and output tasks.

    The SDK's wait_for_rpcs (pulumi/runtime/stack.py) returns at the first failed RPC and leaves
    the others in flight; their later failures would be "never retrieved" and land in the next
    run. Here each one is awaited, so its exception is retrieved within this run.
    """
    rpc_manager = runtime_settings.SETTINGS.rpc_manager
    while True:
        run.wait_idle()
        with runtime_settings.SETTINGS.lock:
            pending = [*rpc_manager.rpcs, *runtime_settings.SETTINGS.outputs]
            rpc_manager.rpcs.clear()
            runtime_settings.SETTINGS.outputs.clear()
        if not pending:
            if run.inflight == 0:
                break
            continue
        tasks = [asyncio.ensure_future(p) for p in pending]

        async def settle(tasks: list[asyncio.Future]) -> list[BaseException]:
            done, not_done = await asyncio.wait(tasks, timeout=timeout)
            for task in not_done:
                task.cancel()
            errors: list[BaseException] = []
            for task in [*done, *not_done]:
                try:
                    await task
                except asyncio.CancelledError:
                    errors.append(TimeoutError(f"an SDK task did not settle within {timeout:.0f}s"))
                except Exception as exc:  # retrieved here so it belongs to this run
                    errors.append(exc)
            return errors

        for error in _sync_await(settle(tasks)):
            # Most are the SDK passing on a step failure the monitor already reported; anything
            # else (e.g. a program callback that raised) is a failure of this run too.
            if not getattr(error, _REPORTED_MARK, False):
                run.failures.append(f"{type(error).__name__}: {error}")
                _mark_reported(error)
    rpc_manager.unhandled_exception = None
    rpc_manager.exception_traceback = None


# Set on every error a run raised to the SDK and reports itself (in its failures, or as a skipped
# step). An attribute, not a weak set: the garbage collector clears weak references to an
# exception's reference cycle before the futures holding it are finalised.
_REPORTED_MARK = "rehearsal_reported_by_its_run"


def _mark_reported(error: BaseException) -> BaseException:
    setattr(error, _REPORTED_MARK, True)
    return error


def install_exception_handler() -> None:
    """The SDK rejects every output future of a failed resource with its error; the ones nothing
    reads are garbage-collected later, when asyncio would log "Future exception was never
    retrieved". An error its run already reported is not reported again; any other error goes to
    asyncio's default handler as usual."""
    loop = asyncio.get_event_loop()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if error is not None and getattr(error, _REPORTED_MARK, False):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def check_options(where: str, request: Any) -> None:
    """Refuses any resource option the engine does not implement, before anything is touched."""
    for field_name, option in _REFUSED_OPTIONS.items():
        value = getattr(request, field_name, None)
        if value is not None and len(value):
            raise Refused(f"{where}: resource option '{option}' is not implemented by the rehearsal engine")
    for alias in request.aliases:
        # The SDK itself adds type-only aliases (e.g. docker.Image's old type token); with no
        # state under the old type they change nothing. Any other alias is refused.
        spec = alias.spec if alias.HasField("spec") else None
        if spec is None or spec.name or spec.stack or spec.project or spec.parentUrn or spec.noParent:
            raise Refused(f"{where}: resource option 'aliases' is not implemented by the rehearsal engine")
    for field_name, option in _REFUSED_MESSAGE_OPTIONS.items():
        try:
            present = request.HasField(field_name)
        except ValueError:
            present = False
        if present and getattr(request, field_name).ByteSize():
            raise Refused(f"{where}: resource option '{option}' is not implemented by the rehearsal engine")
