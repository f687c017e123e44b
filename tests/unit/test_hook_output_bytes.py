"""Hooks read docker's output as bytes: text that is not UTF-8 is reported, never a crash.

A container's logs or a tool's error can hold any bytes; the stand-in docker CLI appends
one that is not UTF-8 (0xff) when FAKE_GARBLE is set.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fake_docker import FakeDocker

from scripts import backup, backup_scheduler, health_check, hooklib, restore

BAD = "\ufffd"  # what errors="replace" makes of 0xff


@pytest.fixture
def garbled(fake_docker: FakeDocker) -> FakeDocker:
    fake_docker.set(GARBLE="1")
    return fake_docker


def _db() -> backup.Database:
    return backup.Database(container="pg", user="u", name="d")


def test_hooklib(garbled: FakeDocker) -> None:
    garbled.set(STATUS="missing")
    assert hooklib.container_running("pg")[1].endswith(BAD)
    assert hooklib.container_log_tail("api", 1) == f"log line 0 of api\n{BAD}"


def test_backup(garbled: FakeDocker, tmp_path: Path) -> None:
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"PGDMP|a|")
    assert backup.verify_dump(_db(), dump) == 3  # two entries and the stray line
    dump.write_bytes(b"garbage")
    with pytest.raises(backup.HookError, match=f"valid archive\n?{BAD}"):
        backup.verify_dump(_db(), dump)
    source = tmp_path / "src"
    source.write_bytes(b"PGDMP")
    garbled.set(DUMP=str(source), DUMP_EXIT="1", DUMP_ERR="fatal")
    with pytest.raises(backup.HookError, match=f"fatal{BAD}$"):
        backup.take_backup(_db(), tmp_path / "b", "s")


def test_restore(garbled: FakeDocker, tmp_path: Path) -> None:
    garbled.set(PS_EXIT="1", PS_ERR="no")
    with pytest.raises(restore.HookError, match=f"cannot list API containers: no{BAD}$"):
        restore.stop_api_containers("s")
    garbled.set(PS_EXIT="0", PS="id1", STOP_EXIT="1", STOP_ERR="no")
    with pytest.raises(restore.HookError, match=f"cannot stop API containers: no{BAD}$"):
        restore.stop_api_containers("s")
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"PGDMP")
    garbled.set(PSQL_INPUT=str(tmp_path / "sql"), PSQL_EXIT="1", PSQL_ERR="ERROR")
    with pytest.raises(restore.HookError, match=f"ERROR{BAD}$"):
        restore.replay(_db(), dump)
    garbled.set(PSQL_EXIT="0", TO_SQL_EXIT="1", TO_SQL_ERR="bad")
    with pytest.raises(restore.HookError, match=f"bad{BAD}$"):
        restore.replay(_db(), dump)


def test_health_probes(garbled: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    assert health_check.api_probe("api", 5)() == (
        False,
        f'HTTP 200, body is not JSON: \'{{"status": "healthy"}}{BAD}\'',
    )
    garbled.set(API_EXIT="1", API_ERR="refused")
    assert health_check.api_probe("api", 5)()[1].endswith(f"refused{BAD}")
    garbled.set(PG_READY_EXIT="1")
    assert health_check.postgres_probe("pg", "u", "d", 5)() == (False, "127.0.0.1:5432 - accepting connections")


def test_outputs_are_flushed_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_docker: FakeDocker) -> None:
    """A hook's or the scheduler's line must reach a pipe now, not when a buffer fills."""

    class Recording(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.flushed: list[str] = []

        def flush(self) -> None:
            self.flushed.append(self.getvalue())

    stdout = Recording()
    monkeypatch.setattr("sys.stdout", stdout)
    hooklib.emit({"a": 1})
    assert stdout.flushed[-1] == '{"a": 1}\n'
    monkeypatch.setenv("BACKUP_STATUS_FILE", str(tmp_path / "status.json"))
    fake_docker.set(DUMP_EXIT="1")
    backup_scheduler.run_once(_db(), tmp_path / "b", "s", 1, {})
    assert json.loads(stdout.flushed[-1].splitlines()[-1])["event"] == "backup failed"
    source = tmp_path / "src"
    source.write_bytes(b"PGDMP|x|")
    fake_docker.set(DUMP=str(source), DUMP_EXIT="0")
    backup_scheduler.run_once(_db(), tmp_path / "b", "s", 1, {})
    assert json.loads(stdout.flushed[-1].splitlines()[-1])["event"] == "backup"


def test_docker_calls_carry_their_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], float | None]] = []

    class Result:
        returncode = 0
        stdout = b"running\n"
        stderr = b""

    def run(argv: list[str], **kwargs: object) -> Result:
        assert kwargs["capture_output"] is True and kwargs["check"] is False
        seen.append((argv, kwargs.get("timeout")))  # type: ignore[arg-type]
        return Result()

    monkeypatch.setattr(hooklib.subprocess, "run", run)
    hooklib.docker(["ps"], timeout=7)
    hooklib.container_running("pg")
    hooklib.container_log_tail("pg")
    assert seen == [
        (["docker", "ps"], 7),
        (["docker", "inspect", "--format", "{{.State.Status}}", "--", "pg"], 30),
        (["docker", "logs", "--tail", "20", "--", "pg"], 30),
    ]


class _Done:
    def __init__(self, stdout: bytes = b"", returncode: int = 0) -> None:
        self.stdout, self.stderr, self.returncode = stdout, b"", returncode


def _recorder(seen: list[tuple[str, float]], stdout: bytes = b"") -> object:
    def docker(args: list[str], *, timeout: float) -> _Done:
        seen.append((args[0] if args[0] != "exec" else args[-1], timeout))
        return _Done(stdout)

    return docker


def test_script_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts import preflight

    seen: list[tuple[str, float]] = []
    monkeypatch.setattr(health_check, "docker", _recorder(seen, b'{"status": "healthy"}'))
    health_check.api_probe("api", 5.7)()
    health_check.postgres_probe("pg", "u", "d", 5.7)()
    health_check.redis_probe("r", 5.7)()
    monkeypatch.setattr(restore, "docker", _recorder(seen, b"id1\n"))
    restore.stop_api_containers("s")
    monkeypatch.setattr(preflight, "docker", _recorder(seen, b"24.0.7\n"))
    preflight.docker_version()
    preflight.ports_of_own_containers("s")
    preflight.port_holder_container(80)
    assert seen == [
        ("http://localhost:8080/health", 10.7),
        ("d", 10.7),
        ("ping", 10.7),
        ("ps", 30),
        ("stop", 120),
        ("version", 20),
        ("ps", 20),
        ("ps", 20),
    ]


def test_wget_timeout_is_whole_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    argvs: list[list[str]] = []

    def docker(args: list[str], *, timeout: float) -> _Done:
        argvs.append(args)
        return _Done(b'{"status": "healthy"}')

    monkeypatch.setattr(health_check, "docker", docker)
    health_check.api_probe("api", 5.7)()
    assert argvs == [["exec", "--", "api", "wget", "-q", "-O", "-", "-T", "5", "http://localhost:8080/health"]]


def test_pg_restore_list_timeout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[object] = []

    def run(argv: list[str], **kwargs: object) -> _Done:
        seen.append(kwargs["timeout"])
        return _Done(b"1; x\n")

    monkeypatch.setattr(backup.subprocess, "run", run)
    dump = tmp_path / "d"
    dump.write_bytes(b"PGDMP")
    assert backup.verify_dump(_db(), dump) == 1
    assert seen == [3600]
