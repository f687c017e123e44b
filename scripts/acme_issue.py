#!/usr/bin/env python3
"""Deploy hook: the ACME sidecar obtains (or renews, when due) the certificate and nginx serves it.

Runs `acme_client.py issue` inside the sidecar (`docker exec`), which asks the ACME server,
tests the certificate with `nginx -t`, reloads nginx and confirms that nginx presents it.
On any failure this exits 1 with the ACME server's reason as lego reported it (DNS, challenge,
rate limit, connection), and the certificate nginx served before still serves.

env: ACME_CONTAINER (the sidecar), ACME_TIMEOUT (seconds, default 600).
stdout is one JSON object: status, renewed, notAfter, serial, sha256, certificate (public PEM).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hooklib import HookError, docker, emit, env, env_int, fail, require_running, scrub


def issue(container: str, timeout: int) -> dict[str, object]:
    require_running(container, "the ACME sidecar")
    result = docker(["exec", "--", container, "python3", "/app/acme_client.py", "issue"], timeout=timeout)
    if result.returncode != 0:
        message = scrub(result.stderr.decode(errors="replace")).strip() or f"exit {result.returncode}"
        # The sidecar marks its own lines "acme: " for its container log; here the hook's prefix says it.
        message = message.removeprefix("acme: ")
        raise HookError(f"{message}\nThe certificate nginx served before still serves.")
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    try:
        payload = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise HookError(f"the sidecar answered no JSON: {scrub(' '.join(lines))[:300]!r}") from None
    if not isinstance(payload, dict) or payload.get("status") != "ok":
        raise HookError(f"the sidecar did not report success: {scrub(json.dumps(payload))[:300]}")
    return payload


def main() -> None:
    try:
        emit(issue(env("ACME_CONTAINER"), env_int("ACME_TIMEOUT", 600)))
    except HookError as exc:
        fail(f"ACME certificate: {exc}")
    except subprocess.TimeoutExpired as exc:
        fail(f"ACME certificate: the sidecar did not finish within {exc.timeout:.0f}s")


if __name__ == "__main__":
    main()
