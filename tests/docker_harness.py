"""Helpers for tests that drive a real Docker engine.

Everything a test creates goes through a DockerScope, which names objects
`cztest-<8 hex>-<name>`, labels them, publishes ports on 127.0.0.1 only, and
removes them on exit even when the test fails. `docker_sweeper.sweep_leftovers()`
cleans up after runs that were killed before their scopes could; docker_ownership.py
has the labels and IDs that say who owns an object.

Failures to reach Docker raise DockerUnavailable: these tests exist to prove
the deployment works for real, so a missing engine must fail loudly rather
than skip.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import io
import logging
import os
import re
import tarfile
import time
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network
from docker.models.volumes import Volume
from docker_ownership import LABEL, NAME_PREFIX, OWNER, OWNER_LABEL, RUN_ID, RUN_LABEL, SCOPE_LABEL
from ports import free_port

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class DockerUnavailable(RuntimeError):
    """The Docker engine cannot be reached; the message says how to fix it."""


def docker_client(timeout: int = 120) -> docker.DockerClient:
    """A client for DOCKER_HOST (or the default socket) that is known to answer."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(
            f"Docker engine not reachable at {where}: {exc}. "
            "Start it with `sudo .ci/setup-host.sh` (installs docker.io and launches dockerd)."
        ) from exc
    return client


def healthcheck(
    test: list[str], interval: float = 1.0, timeout: float = 3.0, retries: int = 30, start_period: float = 0.0
) -> dict[str, Any]:
    """A Docker healthcheck dict; seconds in, nanoseconds out as the API wants."""
    ns = 1_000_000_000
    return {
        "test": test,
        "interval": int(interval * ns),
        "timeout": int(timeout * ns),
        "retries": retries,
        "start_period": int(start_period * ns),
    }


def _container_diagnostics(container: Container, tail: int = 40) -> str:
    try:
        container.reload()
        state = container.attrs.get("State", {})
        health = state.get("Health") or {}
        probes = [
            f"  exit={p.get('ExitCode')} out={(p.get('Output') or '').strip()[:300]!r}"
            for p in (health.get("Log") or [])[-3:]
        ]
        logs = container.logs(tail=tail).decode(errors="replace")
    except docker.errors.DockerException as exc:
        return f"(could not inspect container: {exc})"
    return (
        f"container {container.name}: status={state.get('Status')} exit={state.get('ExitCode')} "
        f"health={health.get('Status')}\nlast probes:\n" + "\n".join(probes) + f"\nlast {tail} log lines:\n{logs}"
    )


def wait_health_status(container: Container, wanted: str, timeout: float = 60.0) -> None:
    """Wait until Docker reports the health status `wanted` (healthy/unhealthy)."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health")
        if health is None:
            raise ValueError(f"container {container.name} has no healthcheck")
        if health.get("Status") == wanted:
            return
        if state.get("Status") in ("exited", "dead"):
            raise RuntimeError(f"container exited while waiting for {wanted!r}\n{_container_diagnostics(container)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"container not {wanted!r} after {timeout:.0f}s\n{_container_diagnostics(container)}")
        time.sleep(0.5)


def wait_healthy(container: Container, timeout: float = 60.0) -> None:
    """Wait for Docker's health status to become healthy; errors carry logs and probe output."""
    wait_health_status(container, "healthy", timeout)


def http_request(
    method: str,
    url_path: str,
    port: int,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to 127.0.0.1:port.

    http.client is used instead of urllib so proxy environment variables can
    never route test traffic anywhere but loopback.
    """
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, url_path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_http(port: int, url_path: str = "/", status: int = 200, timeout: float = 60.0) -> bytes:
    """Poll 127.0.0.1:port until url_path answers with `status`; returns the body."""
    deadline = time.monotonic() + timeout
    last: str = "no attempt"
    while time.monotonic() < deadline:
        try:
            got, _, body = http_request("GET", url_path, port, timeout=3)
            if got == status:
                return body
            last = f"status {got}: {body[:200]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise TimeoutError(f"127.0.0.1:{port}{url_path} did not answer {status} within {timeout:.0f}s (last: {last})")


def _tar_files(files: Mapping[str, str | bytes | tuple[str | bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, spec in files.items():
            content, mode = spec if isinstance(spec, tuple) else (spec, 0o644)
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name=path.lstrip("/"))
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _normalise_ports(ports: Mapping[int | str, int | None]) -> dict[str, tuple[str, int]]:
    published: dict[str, tuple[str, int]] = {}
    for container_port, host_port in ports.items():
        key = str(container_port)
        if "/" not in key:
            key += "/tcp"
        published[key] = (LOOPBACK, host_port if host_port is not None else free_port())
    return published


class DockerScope:
    """Owns every Docker object one test creates and removes them on exit.

    Use as a context manager (or call close()). Objects created elsewhere,
    e.g. by the Pulumi program under test, can be handed over with track_*()
    so they are removed too.
    """

    def __init__(self, client: docker.DockerClient | None = None, test_name: str = "") -> None:
        self.client = client or docker_client()
        self.id = uuid.uuid4().hex[:8]
        self.test_name = test_name
        self._containers: list[str] = []
        self._networks: list[str] = []
        self._volumes: list[str] = []
        self._marker = ""

    # -- naming ---------------------------------------------------------------
    def name(self, suffix: str) -> str:
        """Unique object name `cztest-<scope id>-<suffix>`.

        Names handed out may be used by code that doesn't label its objects
        (the program under test), so the first call leaves a labelled marker
        volume that tells sweeps in other sessions this scope is alive.
        """
        if not self._marker:
            self._marker = self._name("scope-marker")
            self.client.volumes.create(name=self._marker, labels=self.labels)
            self._volumes.append(self._marker)
        return self._name(suffix)

    def _name(self, suffix: str) -> str:
        return f"{NAME_PREFIX}{self.id}-{suffix}"

    @property
    def labels(self) -> dict[str, str]:
        labels = {LABEL: "1", RUN_LABEL: RUN_ID, SCOPE_LABEL: self.id, OWNER_LABEL: OWNER}
        if self.test_name:
            # Docker label values are free text; keep them short for `docker ps`.
            labels["catalogizer.test.name"] = self.test_name[:200]
        return labels

    # -- creation ------------------------------------------------------------
    def network(self, suffix: str = "net", **kwargs: Any) -> Network:
        kwargs.setdefault("driver", "bridge")
        kwargs["labels"] = {**self.labels, **kwargs.get("labels", {})}
        net = self.client.networks.create(self._name(suffix), **kwargs)
        self._networks.append(net.name)
        return net

    def volume(self, suffix: str = "vol", **kwargs: Any) -> Volume:
        kwargs["labels"] = {**self.labels, **kwargs.get("labels", {})}
        vol = self.client.volumes.create(name=self._name(suffix), **kwargs)
        self._volumes.append(vol.name)
        return vol

    def container(
        self,
        image: str,
        suffix: str,
        *,
        network: Network | str | None = None,
        aliases: Iterable[str] = (),
        ports: Mapping[int | str, int | None] | None = None,
        files: Mapping[str, str | bytes | tuple[str | bytes, int]] | None = None,
        start: bool = True,
        **kwargs: Any,
    ) -> Container:
        """Create (and by default start) a container.

        ports maps container port -> host port (None picks a free one), always
        bound to 127.0.0.1. files are uploaded before start, the way the
        deploy program uploads nginx.conf and redis.conf.
        """
        if kwargs.get("network_mode") == "host" or "publish_all_ports" in kwargs:
            raise ValueError("host networking / publish_all_ports would expose ports beyond 127.0.0.1")
        kwargs["labels"] = {**self.labels, **kwargs.get("labels", {})}
        if ports:
            kwargs["ports"] = _normalise_ports(ports)
        if network is not None:
            net_name = network if isinstance(network, str) else network.name
            kwargs["network"] = net_name
            if aliases:
                kwargs["networking_config"] = {net_name: self.client.api.create_endpoint_config(aliases=list(aliases))}
        name = self._name(suffix)
        container = self.client.containers.create(image, name=name, **kwargs)
        self._containers.append(container.id)
        if files:
            container.put_archive("/", _tar_files(files))
        if start:
            container.start()
            container.reload()
        return container

    def run_once(
        self,
        image: str,
        command: list[str] | str,
        *,
        network: Network | str | None = None,
        timeout: float = 60.0,
        **kwargs: Any,
    ) -> tuple[int, str]:
        """Run a short-lived container to completion; returns (exit code, output)."""
        container = self.container(image, f"once-{uuid.uuid4().hex[:6]}", network=network, command=command, **kwargs)
        try:
            result = container.wait(timeout=timeout)
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
            return int(result.get("StatusCode", -1)), output
        finally:
            self._remove_container(container.id)

    def exec(
        self,
        container: Container,
        command: list[str] | str,
        *,
        user: str = "",
        environment: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """docker exec; returns (exit code, combined output)."""
        result = container.exec_run(command, user=user, environment=environment, demux=False)
        return int(result.exit_code), (result.output or b"").decode(errors="replace")

    def remove(self, container: Container, stop_timeout: int | None = 30) -> None:
        """Stop with the image's stop signal (graceful), then remove with anonymous volumes.

        stop_timeout=None skips the stop and kills, for tests of crash behaviour.
        """
        if stop_timeout is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.stop(timeout=stop_timeout)
        self._remove_container(container.id)

    # -- adoption of objects created by others ------------------------------------
    def track_container(self, name_or_id: str) -> None:
        self._containers.append(name_or_id)

    def track_network(self, name_or_id: str) -> None:
        self._networks.append(name_or_id)

    def track_volume(self, name: str) -> None:
        self._volumes.append(name)

    @staticmethod
    def host_port(container: Container, container_port: int | str) -> int:
        """The 127.0.0.1 port that container_port is published on."""
        key = str(container_port)
        if "/" not in key:
            key += "/tcp"
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].get(key) or []
        for b in bindings:
            if b.get("HostIp") == LOOPBACK:
                return int(b["HostPort"])
        raise KeyError(f"{container.name}: {key} is not published on {LOOPBACK} (bindings: {bindings})")

    # -- teardown --------------------------------------------------------------
    def _remove_container(self, ref: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(ref, force=True, v=True)
        if ref in self._containers:
            self._containers.remove(ref)

    def close(self) -> list[str]:
        """Remove containers (with anonymous volumes), then networks, then volumes.

        Returns the errors encountered; every object is attempted regardless.
        """
        errors: list[str] = []
        # Also catch containers created directly with scope.labels.
        labelled = [c.id for c in self.client.containers.list(all=True, filters={"label": f"{SCOPE_LABEL}={self.id}"})]
        for ref in dict.fromkeys([*reversed(self._containers), *labelled]):
            try:
                self._remove_container(ref)
            except docker.errors.APIError as exc:
                errors.append(f"container {ref}: {exc}")
        for ref in dict.fromkeys(reversed(self._networks)):
            try:
                _remove_network(self.client, self.client.networks.get(ref))
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                errors.append(f"network {ref}: {exc}")
        for ref in dict.fromkeys(reversed(self._volumes)):
            try:
                self.client.volumes.get(ref).remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                errors.append(f"volume {ref}: {exc}")
        self._containers.clear()
        self._networks.clear()
        self._volumes.clear()
        return errors

    def __enter__(self) -> DockerScope:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        errors = self.close()
        if errors:
            message = "DockerScope cleanup failed:\n" + "\n".join(errors)
            if exc is None:
                raise RuntimeError(message)
            # Never mask the test's own failure with a cleanup problem.
            log.error(message)


def _remove_network(client: docker.DockerClient, net: Network) -> None:
    # Containers we never tracked (e.g. created by the program under test) may
    # still be attached; a network can't be removed until they're gone.
    net.reload()
    for cid in net.attrs.get("Containers") or {}:
        with contextlib.suppress(docker.errors.APIError):
            net.disconnect(cid, force=True)
    net.remove()


def _parse_docker_time(raw: str) -> dt.datetime:
    # Docker emits RFC 3339 with nanoseconds; fromisoformat takes at most micro.
    m = re.fullmatch(r"(.+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", raw.strip())
    if not m:
        raise ValueError(f"unrecognised Docker timestamp {raw!r}")
    head, frac, tz = m.groups()
    tz = "+00:00" if tz == "Z" else tz
    return dt.datetime.fromisoformat(f"{head}.{(frac or '0')[:6]}{tz}")
