#!/usr/bin/env python3
"""Post-deploy verification in swarm mode: every task of every service, and the public URL.

Polls until all pass or HEALTH_TIMEOUT runs out:
- each service in SWARM_SERVICES (on DOCKER_HOST, a manager): no update rolled back or paused,
  and every task Swarm wants running is running (a replicated service: as many as its replicas;
  a global one: at least one). A task with a health check is RUNNING only once it is healthy: the
  engine's task controller waits for the health_status event before it reports the task started
  and adds it to the service's load balancing (moby daemon/cluster/executor/container/controller.go,
  `Start`), so "running" is "healthy" here;
- nginx: GET HEALTH_URL through HEALTH_CONNECT_ADDRESS (an edge node), as scripts/health_check.py does.
Exit 0 prints one JSON summary; exit 1 names each failed check and its last answer.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from health_check import Check, nginx_check, request_timeout, verify
from hooklib import HookError, docker, env, scrub

# UpdateStatus.State values that mean the last update did not go through (moby api/types/swarm).
FAILED_UPDATES = ("rollback_started", "rollback_completed", "rollback_paused", "paused")


def service_probe(service: str, timeout: float) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        inspected = docker(["service", "inspect", "--", service], timeout=timeout)
        if inspected.returncode != 0:
            return False, scrub(inspected.stderr.decode(errors="replace").strip())
        (spec,) = json.loads(inspected.stdout)
        update = (spec.get("UpdateStatus") or {}).get("State", "")
        if update in FAILED_UPDATES:
            message = (spec.get("UpdateStatus") or {}).get("Message", "")
            return False, f"update {update}: {message}"
        mode = spec["Spec"]["Mode"]
        wanted = mode["Replicated"]["Replicas"] if "Replicated" in mode else None
        tasks = docker(
            [
                "service",
                "ps",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                "--format",
                "{{json .}}",
                "--",
                service,
            ],
            timeout=timeout,
        )
        if tasks.returncode != 0:
            return False, scrub(tasks.stderr.decode(errors="replace").strip())
        rows = [json.loads(line) for line in tasks.stdout.decode().splitlines() if line.strip()]
        running = [row for row in rows if str(row.get("CurrentState", "")).startswith("Running")]
        nodes = sorted({row.get("Node", "") for row in running})
        detail = f"{len(running)}/{len(rows)} tasks running" + (f", {wanted} wanted" if wanted is not None else "")
        detail += f" on {len(nodes)} node(s)"
        stuck = [
            f"{row.get('Name')}: {row.get('CurrentState')} {row.get('Error', '')}".strip()
            for row in rows
            if row not in running
        ]
        if stuck:
            detail += "; " + "; ".join(stuck)[:300]
        enough = len(running) == wanted if wanted is not None else len(running) >= 1
        return enough and not stuck, detail

    return probe


def build_checks() -> list[Check]:
    timeout = request_timeout()
    checks = [
        Check(f"service:{name}", name, service_probe(name, timeout + 25))
        for name in env("SWARM_SERVICES").split(",")
        if name
    ]
    if not checks:
        raise HookError("SWARM_SERVICES names no service")
    checks.append(nginx_check(timeout))
    return checks


def main() -> None:
    # Every round checks everything again: a task can die after it once looked fine.
    verify("swarm health check", build_checks, recheck=True)


if __name__ == "__main__":
    main()
