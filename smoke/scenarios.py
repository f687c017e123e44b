"""The rehearsal's core scenarios, carried out by the real Pulumi engine through the Automation API.

fresh up -> update under load (a client loop through nginx for the whole update) -> destroy.
The stack is the rehearsal's (Pulumi.rehearsal.yaml: locally built images, the stand-in API)
with its own name prefix, free ports and temporary folders; whatever happens, every container,
network, volume and built image of the run is removed, then the stack and its folder.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from smoke.plumbing import PROJECT_DIR, CannotRun, SmokeFailed, StepResult, ThrowawayStack, find_cli

TESTS_DIR = PROJECT_DIR / "tests"
VERSION_ARG = re.compile(r"^ARG VERSION=.*$", re.MULTILINE)
LOOP_MAX_REQUESTS = 20_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_answers() -> str | None:
    """None when the Docker engine answers, else why not."""
    if shutil.which("docker") is None:
        return "the docker command is missing (run .ci/setup-host.sh as root)"
    done = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        return f"the Docker engine does not answer: {done.stderr.strip()[:200]} (run .ci/setup-host.sh as root)"
    return None


def https_get(port: int, path: str, ca_pem: str, timeout: float = 10) -> tuple[int, bytes]:
    """GET through nginx on 127.0.0.1, verifying the stack's own certificate for `localhost`."""
    context = ssl.create_default_context(cadata=ca_pem)
    conn = http.client.HTTPSConnection("localhost", port, timeout=timeout, context=context)
    conn.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=timeout), server_hostname="localhost"
    )
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class ClientLoop:
    """GET /health over and over (bounded); a failure is anything but 200 + healthy."""

    def __init__(self, port: int, ca_pem: str) -> None:
        self.port, self.ca_pem = port, ca_pem
        self.sent = self.failed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and self.sent < LOOP_MAX_REQUESTS:
            self.sent += 1
            try:
                status, body = https_get(self.port, "/health", self.ca_pem)
                ok = status == 200 and json.loads(body).get("status") == "healthy"
                detail = f"HTTP {status}"
            except (OSError, ValueError, http.client.HTTPException) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            if not ok:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append(detail)
            time.sleep(0.05)

    def __enter__(self) -> ClientLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Run:
    """One walk through the scenarios; `summaries` collects one line per step."""

    def __init__(self, root: Path, log: Callable[[str], None]) -> None:
        self.root = root
        self.log = log
        self.prefix = f"smk{secrets.token_hex(3)}"
        self.checkout = root / "checkout"
        shutil.copytree(TESTS_DIR / "standin_catalogizer", self.checkout, ignore=shutil.ignore_patterns("__pycache__"))
        self.https_port = free_port()
        self.summaries: list[str] = []

    def config(self) -> dict[str, Any]:
        """Pulumi.rehearsal.yaml plus what must be unique to this run (as the rehearsal does)."""
        base = yaml.safe_load((PROJECT_DIR / "Pulumi.rehearsal.yaml").read_text())["config"]
        overrides = {
            "api": {
                "source": str(self.checkout),
                "mediaRoot": str(self.root / "media"),
                "replicas": 2,
                "memoryMb": 256,
            },
            "postgres": {"memoryMb": 256},
            "redis": {"memoryMb": 64},
            "proxy": {"httpPort": free_port(), "httpsPort": self.https_port},
            "backup": {"dir": str(self.root / "backups")},
            "health": {"timeoutSeconds": 60, "intervalSeconds": 1},
        }
        for section, values in overrides.items():
            key = f"catalogizer:{section}"
            base[key] = {**base.get(key, {}), **values}
        base["catalogizer:namePrefix"] = self.prefix
        return base

    def set_version(self, version: str) -> None:
        dockerfile = self.checkout / "catalog-api" / "Dockerfile"
        dockerfile.write_text(VERSION_ARG.sub(f"ARG VERSION={version}", dockerfile.read_text()))

    def served_version(self, out: StepResult) -> str:
        status, body = https_get(self.https_port, "/health", out.outputs["tlsCertificate"])
        if status != 200:
            raise SmokeFailed(f"/health through nginx answered {status}: {body[:200]!r}")
        return str(json.loads(body)["version"])

    def walk(self, stack: ThrowawayStack) -> None:
        (self.root / "media").mkdir()
        stack.configure(self.config())

        self.set_version("smoke-v1")
        fresh = stack.up("1 fresh up")
        health = fresh.outputs.get("health", {})
        if health.get("status") != "healthy":
            raise SmokeFailed(f"1 fresh up: the health output is {health!r}")
        if self.served_version(fresh) != "smoke-v1":
            raise SmokeFailed("1 fresh up: nginx does not serve smoke-v1")
        self.summaries.append(
            fresh.line(f"/health through nginx over TLS: smoke-v1, {len(health.get('checks', {}))} checks")
        )

        self.set_version("smoke-v2")
        with ClientLoop(self.https_port, fresh.outputs["tlsCertificate"]) as loop:
            update = stack.up("2 update under load")
        if loop.sent < 10 or loop.failed:
            raise SmokeFailed(f"2 update under load: {loop.failed} of {loop.sent} requests failed: {loop.errors}")
        if self.served_version(update) != "smoke-v2":
            raise SmokeFailed("2 update under load: nginx does not serve smoke-v2")
        self.summaries.append(update.line(f"client loop: {loop.sent} sent, 0 failed"))

        destroyed = stack.destroy("3 destroy")
        left = self._docker_lines(
            "ps", "-a", "--filter", f"label=catalogizer.stack={self.prefix}", "--format", "{{.Names}}"
        )
        if left:
            raise SmokeFailed(f"3 destroy: containers left: {left}")
        self.summaries.append(destroyed.line("no container left; protected volumes kept, as designed"))

    def _docker_lines(self, *args: str) -> list[str]:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)
        return [line for line in done.stdout.splitlines() if line.strip()]

    def remove_everything(self) -> list[str]:
        """Every container, network, volume and image of this run's prefix, protected volumes too."""
        problems: list[str] = []
        containers = self._docker_lines("ps", "-aq", "--filter", f"label=catalogizer.stack={self.prefix}")
        containers += self._docker_lines("ps", "-aq", "--filter", f"name={self.prefix}")
        volumes = [v for v in self._docker_lines("volume", "ls", "-q") if v.startswith(self.prefix + "-")]
        networks = self._docker_lines("network", "ls", "-q", "--filter", f"name={self.prefix}")
        images = self._docker_lines("images", "-q", f"{self.prefix}-*")
        for command, names in (
            (["rm", "-f", "-v"], sorted(set(containers))),
            (["network", "rm"], networks),
            (["volume", "rm", "-f"], volumes),
            (["image", "rm", "-f"], sorted(set(images))),
        ):
            if not names:
                continue
            done = subprocess.run(
                ["docker", *command, *names], capture_output=True, text=True, timeout=300, check=False
            )
            if done.returncode != 0:
                problems.append(f"docker {' '.join(command)}: {done.stderr.strip()[:200]}")
        return problems


def main(argv: list[str] | None = None) -> int:
    del argv
    say = print
    try:
        cli = find_cli()
        why = docker_answers()
        if why:
            raise CannotRun(why)
    except CannotRun as exc:
        say(f"[smoke] cannot run: {exc}")
        return 2

    sys.path[:0] = [str(PROJECT_DIR), str(TESTS_DIR)]
    from images.ensure import ensure_images  # the rehearsal's locally built images, cached by tag

    try:
        ensure_images()
    except Exception as exc:  # e.g. no debootstrap, or not root: the build says which
        say(f"[smoke] cannot run: the rehearsal's images could not be built ({exc}); run `./test.sh` once as root")
        return 2
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="catalogizer-smoke-"))
    run = Run(root / "run", lambda line: say(f"  {line.rstrip()}"))
    stack = ThrowawayStack(root / "pulumi", cli, log=lambda line: say(f"  {line.rstrip()}"))
    failed: str | None = None
    try:
        stack.open()
        say(f"[smoke] stack {stack.name} ({run.prefix}), Pulumi CLI {cli.version}, state in {stack.state_dir}")
        run.walk(stack)
    except SmokeFailed as exc:
        failed = str(exc)
    except Exception as exc:  # the CLI's own errors (stack init, config) end the run the same way
        failed = f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(SmokeFailed):
            if failed and stack.stack is not None:
                stack.destroy("cleanup destroy")
        problems = run.remove_everything() + stack.close()
        shutil.rmtree(root, ignore_errors=True)
    for line in run.summaries:
        say(line)
    if problems:
        say("[smoke] teardown: " + "; ".join(problems))
    say(f"[smoke] total: {time.monotonic() - started:.1f}s")
    if failed:
        say(f"[smoke] FAILED: {failed}")
        return 1
    say("[smoke] 3 passed, 0 failed")
    return 0
