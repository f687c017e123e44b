"""Issue 10 outcome 8: every docker argv built from config ends the options with `--`
before any positional value, so a value starting with '-' can never become an option."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import backup  # noqa: E402  (scripts/ is not a package)
import health_check  # noqa: E402
import hooklib  # noqa: E402
import preflight  # noqa: E402
import restore  # noqa: E402

HOSTILE = "--volume=/:/host"


def _positional_after_end_of_options(argv: list[str], value: str) -> bool:
    return "--" in argv and value in argv and argv.index("--") < argv.index(value)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []

    def fake_docker(args: list[str], *, timeout: float) -> subprocess.CompletedProcess[bytes]:
        seen.append(list(args))
        return subprocess.CompletedProcess(args, 0, b"running\n0 0 0 1048576 0% /probe\n", b"")

    for module in (hooklib, preflight, restore, health_check):
        monkeypatch.setattr(module, "docker", fake_docker)
    return seen


CASES: list[tuple[str, Callable[[], Any]]] = [
    ("inspect", lambda: hooklib.container_running(HOSTILE)),
    ("logs", lambda: hooklib.container_log_tail(HOSTILE)),
    ("run", lambda: preflight.free_gb_on_engine("/srv/x", HOSTILE)),
    ("start", lambda: restore.start_containers([HOSTILE])),
    ("api exec", lambda: health_check.api_probe(HOSTILE, 5)()),
    ("postgres exec", lambda: health_check.postgres_probe(HOSTILE, "u", "d", 5)()),
    ("redis exec", lambda: health_check.redis_probe(HOSTILE, 5)()),
]


@pytest.mark.parametrize(("name", "call"), CASES, ids=[name for name, _ in CASES])
def test_docker_cli_calls_end_options_before_config_values(
    calls: list[list[str]], name: str, call: Callable[[], Any]
) -> None:
    call()
    (argv,) = calls
    assert _positional_after_end_of_options(argv, HOSTILE), argv


def test_docker_exec_for_pg_tools_ends_options_before_the_container() -> None:
    argv = backup.Database(container=HOSTILE, user="u", name="d").argv("pg_dump", stdin=True)
    assert _positional_after_end_of_options(argv, HOSTILE), argv


@pytest.mark.parametrize(
    "name", ["PGPASSWORD", "REDIS_PASSWORD", "API_DB_PASSWORD", "JWT_SECRET", "ADMIN_PASSWORD", "GRAFANA_PASSWORD"]
)
def test_scrub_covers_every_secret_of_the_stack(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # Issue 10 outcome 5: JWT and admin included.
    monkeypatch.setenv(name, "s3cr3t-value-of-" + name.lower())
    text = f"psql: FATAL: password authentication failed ('s3cr3t-value-of-{name.lower()}')"
    assert "s3cr3t" not in hooklib.scrub(text)


def test_scrub_covers_secret_looking_names_it_does_not_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTIC_PASSWORD", "restic-repo-password")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
    assert hooklib.scrub("x restic-repo-password y aws-secret-value") == "x *** y ***"


@pytest.mark.parametrize("folder", ["/srv/docker-data", "/srv/docker-data/volumes/x", "/srv"])
def test_preflight_refuses_folders_in_or_around_the_real_docker_root(folder: str) -> None:
    # dockerd --data-root=/srv/docker-data: the settings' /var/lib/docker rule cannot know it.
    with pytest.raises(hooklib.HookError, match="Docker's data root"):
        preflight.check_outside_docker_root("/srv/docker-data", {"catalogizer:api.mediaRoot": folder})
    preflight.check_outside_docker_root("/srv/docker-data", {"catalogizer:api.mediaRoot": "/srv/media"})
