#!/usr/bin/env python3
"""Post-deploy health verification: the runbook's "Verify Deployment", made strict.

Polls until every check passes or HEALTH_TIMEOUT runs out:
- nginx: GET HEALTH_URL over HTTPS, the certificate verified against the stack's own
  (HEALTH_CA_PEM), answering 200 with {"status": "healthy"};
- every API container's own /health, from inside the container;
- PostgreSQL: pg_isready;
- Redis: an authenticated PING.
Exit 0 prints one JSON summary; exit 1 names each failed check, its last answer and the
last log lines of its container, so `pulumi up` fails with something to act on.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hooklib import HookError, container_log_tail, docker, emit, env, env_int, fail, scrub

API_HEALTH = "http://localhost:8080/health"


@dataclass
class Check:
    name: str
    container: str
    probe: Callable[[], tuple[bool, str]]
    ok: bool = False
    answer: str = "not run yet"

    def run(self) -> None:
        try:
            self.ok, answer = self.probe()
        except Exception as exc:
            self.ok, answer = False, f"{type(exc).__name__}: {exc}"
        self.answer = scrub(answer)[:500]


def _healthy_json(status: int, body: str) -> tuple[bool, str]:
    try:
        payload = json.loads(body)
    except ValueError:
        return False, f"HTTP {status}, body is not JSON: {body[:200]!r}"
    healthy = status == 200 and isinstance(payload, dict) and payload.get("status") == "healthy"
    return healthy, f"HTTP {status} {json.dumps(payload)[:300]}"


def nginx_probe(url: str, connect_address: str, ca_pem: str | None, timeout: float) -> Callable[[], tuple[bool, str]]:
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    context = None
    if parsed.scheme == "https" and not ca_pem and os.environ.get("HEALTH_SYSTEM_CA") == "true":
        # tls.mode=acme with a public CA: the chain must verify against the system's roots.
        context = ssl.create_default_context()
    elif parsed.scheme == "https":
        if not ca_pem:
            raise HookError("HEALTH_CA_PEM (or HEALTH_SYSTEM_CA=true) is required for an https HEALTH_URL")
        # Trust exactly the stack's certificate (or the ACME server's CA bundle); PARTIAL_CHAIN
        # lets a CA-issued leaf or intermediate in the bundle be the anchor.
        context = ssl.create_default_context()
        context.load_verify_locations(cadata=ca_pem)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN

    def probe() -> tuple[bool, str]:
        port = parsed.port or (443 if context else 80)
        conn = http.client.HTTPConnection(connect_address, port, timeout=timeout)
        sock = socket.create_connection((connect_address, port), timeout=timeout)
        # The TCP connection goes to this stack's host while SNI and the hostname check use
        # the public name: the probe sees our nginx, whatever the name resolves to elsewhere.
        conn.sock = context.wrap_socket(sock, server_hostname=host) if context else sock
        try:
            conn.request("GET", parsed.path or "/", headers={"Host": parsed.netloc, "User-Agent": "catalogizer-health"})
            response = conn.getresponse()
            return _healthy_json(response.status, response.read(4096).decode(errors="replace"))
        finally:
            conn.close()

    return probe


def api_probe(container: str, timeout: float) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        result = docker(
            ["exec", "--", container, "wget", "-q", "-O", "-", "-T", str(int(timeout)), API_HEALTH], timeout=timeout + 5
        )
        body = result.stdout.decode(errors="replace")
        if result.returncode != 0:
            detail = (result.stderr.decode(errors="replace") or body).strip()
            return False, f"wget {API_HEALTH} failed (exit {result.returncode}): {detail}"
        return _healthy_json(200, body)

    return probe


def postgres_probe(container: str, user: str, database: str, timeout: float) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        result = docker(
            ["exec", "--", container, "pg_isready", "-h", "127.0.0.1", "-U", user, "-d", database], timeout=timeout + 5
        )
        return result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace").strip()

    return probe


def redis_probe(container: str, timeout: float) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        # REDISCLI_AUTH is copied from our environment by name: the password stays off argv.
        result = docker(
            ["exec", "-e", "REDISCLI_AUTH", "--", container, "redis-cli", "--no-auth-warning", "ping"],
            timeout=timeout + 5,
        )
        answer = (result.stdout + result.stderr).decode(errors="replace").strip()
        return result.returncode == 0 and answer == "PONG", answer or f"exit {result.returncode}"

    return probe


def request_timeout() -> float:
    return float(env_int("HEALTH_REQUEST_TIMEOUT", 5))


def nginx_check(timeout: float, container: str = "") -> Check:
    """GET HEALTH_URL through HEALTH_CONNECT_ADDRESS, trusting HEALTH_CA_FILE or HEALTH_CA_PEM (or,
    with HEALTH_SYSTEM_CA, the system's CAs); both topologies' hooks check nginx this way."""
    ca_path = os.environ.get("HEALTH_CA_FILE")
    ca_pem = Path(ca_path).read_text() if ca_path else os.environ.get("HEALTH_CA_PEM")
    probe = nginx_probe(env("HEALTH_URL"), env("HEALTH_CONNECT_ADDRESS", "127.0.0.1"), ca_pem, timeout)
    return Check("nginx", container, probe)


def build_checks() -> list[Check]:
    timeout = request_timeout()
    checks = [nginx_check(timeout, env("NGINX_CONTAINER"))]
    os.environ["REDISCLI_AUTH"] = env("REDIS_PASSWORD")
    for container in [c for c in env("API_CONTAINERS").split(",") if c]:
        checks.append(Check(f"api:{container}", container, api_probe(container, timeout)))
    pg = env("PG_CONTAINER")
    checks.append(Check("postgres", pg, postgres_probe(pg, env("PGUSER"), env("PGDATABASE"), timeout)))
    redis = env("REDIS_CONTAINER")
    checks.append(Check("redis", redis, redis_probe(redis, timeout)))
    return checks


def poll(checks: list[Check], deadline: float, interval: float, *, recheck: bool = False) -> int:
    """Runs the checks every `interval` until all pass or `deadline` (monotonic) would be passed;
    returns the number of rounds. `recheck`: a check that passed runs again each round."""
    attempts = 0
    while True:
        attempts += 1
        for check in checks:
            if recheck or not check.ok:
                check.run()
        if all(check.ok for check in checks) or time.monotonic() + interval > deadline:
            return attempts
        time.sleep(interval)


def verify(
    what: str,
    build: Callable[[], list[Check]],
    *,
    recheck: bool = False,
    details: Callable[[Check], list[str]] = lambda check: [],
) -> None:
    """Polls the checks `build` returns every HEALTH_INTERVAL s until all pass or HEALTH_TIMEOUT runs out;
    exit 0 with one JSON summary, or exit 1 naming each failed check, its last answer and `details`."""
    started = time.monotonic()
    try:
        deadline = started + env_int("HEALTH_TIMEOUT", 120)
        interval = env_int("HEALTH_INTERVAL", 2)
        checks = build()
    except (HookError, OSError) as exc:
        fail(f"{what} could not start: {exc}")
    attempts = poll(checks, deadline, interval, recheck=recheck)
    seconds = round(time.monotonic() - started, 3)
    failed = [check for check in checks if not check.ok]
    if failed:
        lines = [f"{what} failed after {seconds}s ({attempts} attempts):"]
        for check in failed:
            lines.append(f"- {check.name}: last answer: {check.answer}")
            lines.extend(details(check))
        fail("\n".join(lines))
    emit(
        {
            "status": "healthy",
            "seconds": seconds,
            "attempts": attempts,
            "checks": {check.name: check.answer for check in checks},
        }
    )


def log_tail(check: Check) -> list[str]:
    return [f"  last log lines of {check.container}:"] + [
        f"    {line}" for line in container_log_tail(check.container).splitlines()
    ]


def main() -> None:
    verify("health check", build_checks, details=log_tail)


if __name__ == "__main__":
    main()
