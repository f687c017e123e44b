"""Shared plumbing for the deploy hooks: environment, docker CLI calls, safe error output.

The hooks get every secret through their environment (never argv) and hand it on to
`docker exec` with `-e NAME`, which copies the value from our environment without
putting it on any command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

# Every secret of the stack under every name a hook may be given it; any other variable whose
# name says it is secret (_PASSWORD, _SECRET, _TOKEN, _KEY, _AUTH) is scrubbed as well.
SECRET_ENV = (
    "PGPASSWORD",
    "REDIS_PASSWORD",
    "REDISCLI_AUTH",
    "API_DB_PASSWORD",
    "MONITOR_DB_PASSWORD",
    "POSTGRES_PASSWORD",
    "DATABASE_PASSWORD",
    "JWT_SECRET",
    "ADMIN_PASSWORD",
    "GRAFANA_PASSWORD",
    "HEALTH_CA_PEM",
    "TLS_KEY_PEM",
    "RESTIC_PASSWORD",
)
_SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|_AUTH|PASSPHRASE)", re.IGNORECASE)
# Comma-separated names of further secret variables (the restic backend's, from
# catalogizer:backupRepositoryEnv); the names are not secret, their values are.
EXTRA_SECRET_ENV = "BACKUP_SECRET_ENV"


class HookError(Exception):
    """A failure the operator must act on; the message is printed as is (after scrubbing)."""


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise HookError(f"environment variable {name} is required")
    return value


def env_int(name: str, default: int | None = None) -> int:
    raw = env(name, None if default is None else str(default))
    try:
        return int(raw)
    except ValueError:
        raise HookError(f"environment variable {name} must be a whole number, got {raw!r}") from None


def scrub(text: str) -> str:
    """Removes any secret value we were given from text bound for logs or errors."""
    extra = {n for n in os.environ.get(EXTRA_SECRET_ENV, "").split(",") if n}
    names = set(SECRET_ENV) | extra | {name for name in os.environ if _SECRET_NAME.search(name)}
    # Longest first, so a secret containing another is replaced whole.
    values = sorted({os.environ.get(name, "") for name in names}, key=len, reverse=True)
    for value in values:
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def docker(args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Runs the docker CLI, which honours DOCKER_HOST from our environment."""
    return subprocess.run(["docker", *args], capture_output=True, timeout=timeout, check=False)


@contextlib.contextmanager
def docker_host(host: str) -> Iterator[None]:
    """Inside, every docker call goes to `host` (DOCKER_HOST, as the data-node hooks are run with
    DOCKER_HOST=dataNodeHost), not on any argv; the previous engine is restored after."""
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = before


def container_running(name: str) -> tuple[bool, str]:
    # `--` before every positional value from config: it can never be read as an option
    # (spf13/pflag, the docker CLI's flag parser, stops at "--").
    result = docker(["inspect", "--format", "{{.State.Status}}", "--", name], timeout=30)
    if result.returncode != 0:
        return False, scrub(result.stderr.decode(errors="replace").strip()) or f"no container {name}"
    status = result.stdout.decode().strip()
    return status == "running", f"container {name} is {status}"


def require_running(name: str, role: str) -> None:
    running, detail = container_running(name)
    if not running:
        raise HookError(f"{role} is not reachable: {detail}")


def use_service_container(service_var: str = "PG_SERVICE", container_var: str = "PG_CONTAINER") -> None:
    """Swarm mode: the hooks are given the service's name and DOCKER_HOST of the node it is pinned
    to; its running task's container there is what `docker exec` needs, so it is looked up (Swarm
    labels every task container with com.docker.swarm.service.name) and put in `container_var`."""
    service = os.environ.get(service_var)
    if not service:
        return
    result = docker(
        [
            "ps",
            "--quiet",
            "--no-trunc",
            "--filter",
            f"label=com.docker.swarm.service.name={service}",
            "--filter",
            "status=running",
        ],
        timeout=30,
    )
    ids = result.stdout.decode().split()
    if result.returncode != 0 or len(ids) != 1:
        detail = scrub(result.stderr.decode(errors="replace").strip()) or f"{len(ids)} running containers"
        where = os.environ.get("DOCKER_HOST", "the local engine")
        raise HookError(
            f"service {service}: expected exactly one running task container on {where}"
            f" (catalogizer:cluster.dataNodeHost), found: {detail}"
        )
    os.environ[container_var] = ids[0]


def container_log_tail(name: str, lines: int = 20) -> str:
    result = docker(["logs", "--tail", str(lines), "--", name], timeout=30)
    text = (result.stdout + result.stderr).decode(errors="replace").rstrip()
    return scrub(text) if text else "(no log lines)"


def emit(summary: dict[str, object]) -> None:
    """The hook's one line of stdout: a JSON object Pulumi exports as a stack output."""
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message: str) -> NoReturn:
    sys.stderr.write(scrub(message).rstrip() + "\n")
    sys.exit(1)
