"""The rehearsal stack: per-run config, traffic through nginx, and complete cleanup."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.networks import Network
from docker_harness import DockerScope
from images import tags
from ports import free_port
from program import stack_config
from rehearsal_engine import Rehearsal

STACK = "rehearsal"
VERSION_ARG = re.compile(r"^ARG VERSION=.*$", re.MULTILINE)


def say(config: pytest.Config, line: str) -> None:
    """Writes past pytest's output capture, so the summary shows in every CI log."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        sys.stderr.write(line + "\n")
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(line)


@dataclass
class LoopStats:
    sent: int = 0
    failed: int = 0
    longest_gap: float = 0.0
    errors: list[str] = field(default_factory=list)
    # Which API version answered (the stand-in's /health names it), success or not.
    versions: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        first = f"; first errors: {self.errors[:3]}" if self.errors else ""
        return f"sent {self.sent}, failed {self.failed}, longest gap {self.longest_gap:.2f}s{first}"


class ClientLoop:
    """GET /health through nginx over and over; a failure is anything but 200 + healthy."""

    def __init__(self, stack: Stack, pause: float = 0.05, context: ssl.SSLContext | None = None) -> None:
        self.stack = stack
        self.pause = pause
        self.context = context
        self.stats = LoopStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # nginx allows one client 20 requests/s to /health (rendering/nginx.py, issue 10): the loop is
    # one client and stays under that, so any non-200 is the deployment's fault, not the limiter's.
    MAX_RATE = 16.0

    def _run(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.is_set():
            sent_at = time.monotonic()
            self.stats.sent += 1
            try:
                status, body = self.stack.https("GET", "/health", timeout=10, context=self.context)
                try:
                    answer = json.loads(body)
                except ValueError:
                    answer = {}  # nginx's own error page: no API version answered
                self.stats.versions[str(answer.get("version"))] += 1
                ok = status == 200 and answer.get("status") == "healthy"
                detail = f"HTTP {status}"
            except (OSError, ValueError, http.client.HTTPException) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            now = time.monotonic()
            if ok:
                self.stats.longest_gap = max(self.stats.longest_gap, now - last_ok)
                last_ok = now
            else:
                self.stats.failed += 1
                if len(self.stats.errors) < 10:
                    self.stats.errors.append(detail)
            time.sleep(max(self.pause, 1 / self.MAX_RATE - (time.monotonic() - sent_at)))
        self.stats.longest_gap = max(self.stats.longest_gap, time.monotonic() - last_ok)

    def run_until(self, sent: int, timeout: float) -> None:
        """Let the loop go on until it has sent `sent` requests; bounded by `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.stats.sent < sent and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.1)

    def __enter__(self) -> ClientLoop:
        self._thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)
        self._stop.set()
        self._thread.join(timeout=30)


class Stack:
    """The rehearsal stack's config, engine and helpers; `results` records each scenario."""

    def __init__(self, scope: DockerScope, root: Path, config: pytest.Config, stack: str = STACK) -> None:
        self.stack = stack
        self.scope = scope
        self.pytest_config = config
        # The domain nginx serves (SNI and Host); the production scenario sets its own.
        self.public_name = "localhost"
        self.root = root
        self.prefix = scope.name("st")
        self.checkout = root / "checkout"
        shutil.copytree(tags.STANDIN_CHECKOUT, self.checkout, ignore=shutil.ignore_patterns("__pycache__"))
        self.media = root / "media"
        self.media.mkdir()
        self.backups = root / "backups"
        self.http_port, self.https_port = free_port(), free_port()
        self.rehearsal = Rehearsal(root / "state.json", client=scope.client, log=self._log)
        self.log_lines: list[str] = []
        self.results: dict[str, bool] = {}
        self.outputs: dict[str, Any] = {}
        self.notes: dict[str, Any] = {}
        self.summaries: list[str] = []
        base = stack_config(stack)
        self.base_config = base
        # Only what must be unique per run, plus short health timeouts and small memory floors.
        self.overrides: dict[str, dict[str, Any]] = {
            "api": {"source": str(self.checkout), "mediaRoot": str(self.media), "replicas": 2, "memoryMb": 256},
            "postgres": {"memoryMb": 256},
            "redis": {"memoryMb": 64},
            "proxy": {"httpPort": self.http_port, "httpsPort": self.https_port},
            # Enough dumps that the pre-update dump of scenario 2 outlives the ups between it and
            # the rollback that restores it (scenario 5).
            "backup": {"dir": str(self.backups), "keep": 20},
            "health": {"timeoutSeconds": 30, "intervalSeconds": 1},
        }
        self.plain: dict[str, Any] = {"namePrefix": self.prefix}

    def _log(self, line: str) -> None:
        self.log_lines.append(f"{time.strftime('%H:%M:%S')} {line}")

    def config(self) -> dict[str, Any]:
        config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.base_config.items()}
        for section, values in self.overrides.items():
            key = f"catalogizer:{section}"
            merged = {**config.get(key, {}), **values}
            config[key] = {k: v for k, v in merged.items() if v is not None}
        for key, value in self.plain.items():
            if value is None:
                config.pop(f"catalogizer:{key}", None)
            else:
                config[f"catalogizer:{key}"] = value
        return config

    def up(self) -> Any:
        result = self.rehearsal.up(self.stack, self.config())
        self.outputs = result.outputs
        return result

    def set_version(self, version: str) -> None:
        """Changes a build input baked into the stand-in image, so the built image ID changes."""
        dockerfile = self.checkout / tags.STANDIN_DOCKERFILE
        dockerfile.write_text(VERSION_ARG.sub(f"ARG VERSION={version}", dockerfile.read_text()))

    # -- traffic through nginx --------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.outputs["tlsCertificate"])
        return context

    def https(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        timeout: float = 10,
        context: ssl.SSLContext | None = None,
    ) -> tuple[int, bytes]:
        status, _, data = self._request(method, path, body, timeout, context)
        return status, data

    def _request(
        self, method: str, path: str, body: dict | None, timeout: float, context: ssl.SSLContext | None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to nginx over TLS on 127.0.0.1; headers with lower-case names."""
        context = context or self._context_cached()
        sock = socket.create_connection(("127.0.0.1", self.https_port), timeout=timeout)
        # The stack's public name for SNI and Host: nginx drops any other name (issue 10).
        conn = http.client.HTTPSConnection(self.public_name, self.https_port, timeout=timeout, context=context)
        conn.sock = context.wrap_socket(sock, server_hostname=self.public_name)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def _context_cached(self) -> ssl.SSLContext:
        cert = self.outputs.get("tlsCertificate")
        if getattr(self, "_ctx_for", None) != cert:
            self._ctx, self._ctx_for = self.ssl_context(), cert
        return self._ctx

    def https_headers(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET like https(), with the response headers (lower-case names)."""
        return self._request("GET", path, None, 10, None)

    def api_image_id(self) -> str:
        """The image the serving API containers run."""
        return self.scope.client.containers.get(self.outputs["containers"]["api"][0]).image.id

    def api_images(self) -> dict[str, str]:
        """Every version of the stack's API image on the engine: tag -> image ID."""
        images = self.scope.client.images.list(name=f"{self.prefix}-api")
        return {tag.split(":", 1)[1]: image.id for image in images for tag in image.tags}

    def items(self) -> list[str]:
        status, body = self.https("GET", "/api/v1/items")
        assert status == 200, body
        return [item["name"] for item in json.loads(body)["items"]]

    def add_item(self, name: str) -> None:
        status, body = self.https("POST", "/api/v1/items", {"name": name})
        assert status == 201, body

    def served_version(self) -> str:
        status, body = self.https("GET", "/health")
        assert status == 200, body
        return json.loads(body)["version"]

    def api_containers(self) -> list[Any]:
        return self.scope.client.containers.list(
            all=True, filters={"label": [f"catalogizer.stack={self.prefix}", "catalogizer.role=api"]}
        )

    def require(self, *scenarios: str) -> None:
        missing = [s for s in scenarios if not self.results.get(s)]
        if missing:
            pytest.fail(f"needs scenario(s) {', '.join(missing)}, which did not pass", pytrace=False)

    def summary(self, name: str, seconds: float, result: str) -> None:
        line = f"[rehearsal] {name}: {seconds:.1f}s, {result}"
        self.summaries.append(line)
        say(self.pytest_config, line)

    # -- teardown --------------------------------------------------------------------------
    def networks(self) -> list[Network]:
        """The stack's networks on the engine, by the stack label every network carries (front and back)."""
        return self.scope.client.networks.list(filters={"label": f"catalogizer.stack={self.prefix}"})

    def remove_everything(self) -> list[str]:
        """Destroy through the engine, then remove whatever is left, protected volumes included."""
        problems: list[str] = []
        try:
            self.rehearsal.destroy()
        except Exception as exc:  # cleanup must go on whatever the engine thinks
            problems.append(f"destroy: {exc}")
        client = self.scope.client
        for _, ref in self.rehearsal.docker_objects():
            for getter in (client.containers.get, client.networks.get, client.volumes.get):
                with contextlib.suppress(docker.errors.NotFound):
                    obj = getter(ref)
                    if getter == client.containers.get:
                        self.scope.track_container(obj.id)
                    elif getter == client.networks.get:
                        self.scope.track_network(obj.id)
                    else:
                        self.scope.track_volume(obj.name)
        # Anything named after the prefix (e.g. the runbook anchor's hand-run container).
        for container in client.containers.list(all=True, filters={"name": self.prefix}):
            self.scope.track_container(container.id)
        for net in self.networks():
            self.scope.track_network(net.id)
        for vol in client.volumes.list():
            if vol.name.startswith(self.prefix + "-"):
                self.scope.track_volume(vol.name)
        # The API versions scripts/api_image.py built (a hook, not a provider: the engine does not list them).
        api_versions = [f"{self.prefix}-api:{tag}" for tag in self.api_images()]
        # Tags first, then the image IDs the builds produced (an update leaves the old one untagged).
        for ref in [*api_versions, *sorted(self.rehearsal.built_images, key=lambda r: r.startswith("sha256:"))]:
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                client.images.remove(ref, noprune=False)
        return problems
