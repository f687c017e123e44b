"""scripts/hooklib.py: environment reading, secret scrubbing and the docker CLI calls."""

from __future__ import annotations

import json

import pytest
from fake_docker import FakeDocker

from scripts import hooklib


def test_env_reads_a_value_or_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_VALUE", "set")
    monkeypatch.delenv("HOOK_MISSING", raising=False)
    assert hooklib.env("HOOK_VALUE") == "set"
    assert hooklib.env("HOOK_VALUE", "default") == "set"
    assert hooklib.env("HOOK_MISSING", "default") == "default"


@pytest.mark.parametrize("value", [None, ""])
def test_env_refuses_a_missing_or_empty_variable(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("HOOK_VALUE", raising=False)
    else:
        monkeypatch.setenv("HOOK_VALUE", value)
    with pytest.raises(hooklib.HookError) as caught:
        hooklib.env("HOOK_VALUE")
    assert str(caught.value) == "environment variable HOOK_VALUE is required"


def test_env_int(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOK_NUMBER", raising=False)
    assert hooklib.env_int("HOOK_NUMBER", 10) == 10
    with pytest.raises(hooklib.HookError, match="HOOK_NUMBER is required"):
        hooklib.env_int("HOOK_NUMBER")
    monkeypatch.setenv("HOOK_NUMBER", "42")
    assert hooklib.env_int("HOOK_NUMBER", 10) == 42
    monkeypatch.setenv("HOOK_NUMBER", "4x")
    with pytest.raises(hooklib.HookError) as caught:
        hooklib.env_int("HOOK_NUMBER", 10)
    assert str(caught.value) == "environment variable HOOK_NUMBER must be a whole number, got '4x'"


def test_scrub_hides_every_secret_we_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hooklib.SECRET_ENV == (
        "PGPASSWORD", "REDIS_PASSWORD", "REDISCLI_AUTH", "API_DB_PASSWORD", "MONITOR_DB_PASSWORD",
        "POSTGRES_PASSWORD", "DATABASE_PASSWORD", "JWT_SECRET", "ADMIN_PASSWORD", "GRAFANA_PASSWORD",
        "HEALTH_CA_PEM", "TLS_KEY_PEM", "RESTIC_PASSWORD",
    )  # fmt: skip
    monkeypatch.setenv("PGPASSWORD", "pg-secret-1")
    monkeypatch.setenv("REDIS_PASSWORD", "redis-secret-2")
    monkeypatch.setenv("REDISCLI_AUTH", "cli-secret-3")
    monkeypatch.setenv("TLS_KEY_PEM", "key-secret-4")
    monkeypatch.setenv("RESTIC_PASSWORD", "restic-secret-5")
    monkeypatch.setenv("HEALTH_CA_PEM", "ca-secret-6")  # a name the pattern alone would not catch
    text = "a pg-secret-1 b redis-secret-2 c cli-secret-3 d pg-secret-1 e key-secret-4 f restic-secret-5 g ca-secret-6"
    assert hooklib.scrub(text) == "a *** b *** c *** d *** e *** f *** g ***"


def test_scrub_leaves_short_values_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # A one-to-three character "secret" would blank out ordinary words; four is the floor.
    monkeypatch.setenv("PGPASSWORD", "abc")
    monkeypatch.setenv("REDIS_PASSWORD", "wxyz")
    monkeypatch.delenv("REDISCLI_AUTH", raising=False)
    assert hooklib.scrub("abc wxyz") == "abc ***"


def test_container_running(fake_docker: FakeDocker) -> None:
    assert hooklib.container_running("pg") == (True, "container pg is running")
    assert fake_docker.argvs() == [["inspect", "--format", "{{.State.Status}}", "--", "pg"]]
    fake_docker.set(STATUS="exited")
    assert hooklib.container_running("pg") == (False, "container pg is exited")


def test_a_missing_container_is_reported_scrubbed(fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "hunter2-secret")
    fake_docker.set(STATUS="missing")
    running, detail = hooklib.container_running("pg")
    assert not running
    assert detail == "Error: No such object: pg ***"
    with pytest.raises(hooklib.HookError) as caught:
        hooklib.require_running("pg", "PostgreSQL")
    assert str(caught.value) == "PostgreSQL is not reachable: Error: No such object: pg ***"


def test_require_running_passes_for_a_running_container(fake_docker: FakeDocker) -> None:
    hooklib.require_running("pg", "PostgreSQL")
    assert len(fake_docker.calls()) == 1


def test_container_log_tail(fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hooklib.container_log_tail("api") == "\n".join(f"log line {i} of api" for i in range(20))
    assert fake_docker.argvs() == [["logs", "--tail", "20", "--", "api"]]
    assert hooklib.container_log_tail("api", 2) == "log line 0 of api\nlog line 1 of api"
    assert hooklib.container_log_tail("api", 0) == "(no log lines)"
    monkeypatch.setenv("PGPASSWORD", "line 1 of")
    assert hooklib.container_log_tail("api", 2) == "log line 0 of api\nlog *** api"


def test_docker_runs_the_cli_with_a_timeout(fake_docker: FakeDocker) -> None:
    result = hooklib.docker(["ps", "-q"], timeout=30)
    assert result.returncode == 0 and result.stdout == b"\n"
    assert hooklib.docker(["bogus"], timeout=30).returncode == 125  # check=False: the caller decides


def test_emit_writes_one_sorted_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    hooklib.emit({"b": 1, "a": "x"})
    out = capsys.readouterr().out
    assert out == '{"a": "x", "b": 1}\n'
    assert json.loads(out) == {"a": "x", "b": 1}


def test_fail_scrubs_and_exits_1(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "hunter2-secret")
    with pytest.raises(SystemExit) as exited:
        hooklib.fail("cannot log in with hunter2-secret\n\n")
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == "cannot log in with ***\n" and captured.out == ""
