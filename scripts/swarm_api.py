"""Swarm mode: keeping the API service off the database while the restore hook replays a dump.

On one host the restore stops the API containers (scripts/restore.py). In swarm mode the API is
a replicated service on the managers' books, so the hook scales it to 0 through the manager
(MANAGER_DOCKER_HOST, the provider's `docker:host`; unset: the local engine) and waits until no
task of it is still running, on any node. The service stays at 0 after a successful replay: the
program's service update then sends the whole declared spec again, replicas included (TF
kreuzwerker/terraform-provider-docker resource_docker_service_funcs.go resourceDockerServiceUpdate
builds it with createServiceSpec(d), whose createServiceMode takes `replicas` from the config), and
the restored-from label in the task spec makes sure that update happens. If it fails health and
Swarm rolls it back, it rolls back to the scaled-to-0 spec (moby vendor/github.com/moby/swarmkit/v2
manager/controlapi/service.go UpdateService keeps the spec it replaces as PreviousSpec;
orchestrator/update/updater.go rollbackUpdate restores PreviousSpec): the version that ran before
never serves the restored data. A failed replay scales the service back to what it was.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence

from hooklib import HookError, scrub

# Every state a task can be in that is not an end (moby api/types/swarm/task.go, TaskState*):
# such a task may still have, or soon have, a container talking to the database.
LIVE_STATES = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"}
)
# The API's stop_grace_period is 30 s (components/swarm/app.py); a node's agent reports shortly after.
STOP_WAIT_SECONDS = 120.0
POLL_SECONDS = 1.0

Runner = Callable[[Sequence[str], float], subprocess.CompletedProcess[bytes]]


def manager_docker(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    """The docker CLI against the manager; DOCKER_HOST in our environment is the data node's."""
    environment = dict(os.environ)
    manager = os.environ.get("MANAGER_DOCKER_HOST", "")
    if manager:
        environment["DOCKER_HOST"] = manager
    else:
        environment.pop("DOCKER_HOST", None)
    return subprocess.run(["docker", *args], capture_output=True, timeout=timeout, check=False, env=environment)


def _text(result: subprocess.CompletedProcess[bytes]) -> str:
    return scrub(result.stderr.decode(errors="replace")).strip() or f"exit {result.returncode}"


def current_replicas(service: str, run: Runner = manager_docker) -> int | None:
    """The service's declared replicas, or None when it does not exist yet (a first deployment)."""
    # `--filter name=` matches by prefix (docker CLI service ls, moby's name filter): compared exactly here.
    listed = run(["service", "ls", "--filter", f"name={service}", "--format", "{{.Name}}"], 30)
    if listed.returncode != 0:
        raise HookError(f"cannot list services on the manager: {_text(listed)}")
    if service not in listed.stdout.decode().split():
        return None
    inspected = run(["service", "inspect", "--format", "{{.Spec.Mode.Replicated.Replicas}}", "--", service], 30)
    raw = inspected.stdout.decode().strip()
    if inspected.returncode != 0 or not raw.isdigit():
        detail = f"got {raw!r}" if inspected.returncode == 0 else _text(inspected)
        raise HookError(f"cannot read the replicas of service {service} (replicated only): {detail}")
    return int(raw)


def scale(service: str, replicas: int, run: Runner = manager_docker) -> None:
    # `service scale` changes Spec.Mode.Replicated.Replicas only and sends the rest of the spec as it
    # is (docker/cli cli/command/service/scale.go runServiceScale): no new tasks, no image resolution.
    # `--detach`: the CLI's own progress wait is not used; live_tasks() below is the bounded wait.
    result = run(["service", "scale", "--detach", "--", f"{service}={replicas}"], 60)
    if result.returncode != 0:
        raise HookError(f"cannot scale service {service} to {replicas}: {_text(result)}")


def live_tasks(service: str, run: Runner = manager_docker) -> list[str]:
    """Tasks of the service whose actual state is not an end state, as `ID state` lines."""
    # CurrentState is "<State> <duration> ago", the state capitalised (docker/cli cli/command/task/
    # formatter.go taskContext.CurrentState); a task scaled away first gets desired state `remove`
    # while its container still runs (swarmkit orchestrator/replicated/services.go reconcile), so
    # the actual state is what counts.
    result = run(["service", "ps", "--no-trunc", "--format", "{{.ID}} {{.CurrentState}}", "--", service], 30)
    if result.returncode != 0:
        raise HookError(f"cannot list the tasks of service {service}: {_text(result)}")
    live = []
    for line in result.stdout.decode().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].lower() in LIVE_STATES:
            live.append(f"{fields[0]} {fields[1].lower()}")
    return live


def scale_to_zero(
    service: str,
    run: Runner = manager_docker,
    wait_seconds: float = STOP_WAIT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> int | None:
    """Scales the API service to 0 and waits until none of its tasks runs; returns the replicas it
    had (None: no such service, nothing to stop). If the wait fails it is scaled back first."""
    replicas = current_replicas(service, run)
    if replicas is None:
        return None
    scale(service, 0, run)
    deadline = time.monotonic() + wait_seconds
    try:
        while live := live_tasks(service, run):
            if time.monotonic() >= deadline:
                raise HookError(
                    f"service {service}: {len(live)} task(s) still live {wait_seconds:.0f}s after scaling to 0 "
                    f"({', '.join(live[:3])})"
                )
            time.sleep(poll_seconds)
    except HookError as exc:
        raise HookError(f"{exc}{scale_back(service, replicas, run)}") from None
    return replicas


def scale_back(service: str, replicas: int | None, run: Runner = manager_docker) -> str:
    """Undoes scale_to_zero; returns a note for the failure message."""
    if not replicas:
        return ""
    try:
        scale(service, replicas, run)
    except HookError as exc:
        return f"; could not scale the API service back: {exc}"
    return f"; the API service {service} was scaled back to {replicas}"
