"""scripts/restore.py without a container: checksum check, stopping the API, the one-transaction replay.

The docker CLI is a stand-in (tests/fake_docker.py); tests/real restores into a real PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fake_docker import FakeDocker

from scripts import backup, restore

STACK = "catalogizer-dev"
DUMP = b"PGDMP|dump to restore|"


def _dump(folder: Path, data: bytes = DUMP, checksum: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{STACK}_20001101T020000000Z.dump"
    path.write_bytes(data)
    sha = checksum if checksum is not None else hashlib.sha256(data).hexdigest()
    (folder / (path.name + ".sha256")).write_text(f"{sha}  {path.name}\n")
    return path


def test_prologue_drops_and_recreates_the_schema() -> None:
    assert restore.PROLOGUE == (
        b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public AUTHORIZATION pg_database_owner;\n"
    )


def test_check_file_returns_the_matching_sha256(tmp_path: Path) -> None:
    dump = _dump(tmp_path)
    assert restore.check_file(dump) == hashlib.sha256(DUMP).hexdigest()
    # Upper-case hex from another tool is the same checksum.
    _dump(tmp_path, checksum=hashlib.sha256(DUMP).hexdigest().upper())
    assert restore.check_file(dump) == hashlib.sha256(DUMP).hexdigest()


def test_check_file_refuses_a_corrupt_dump(tmp_path: Path) -> None:
    dump = _dump(tmp_path)
    dump.write_bytes(DUMP[:-1])  # truncated after the checksum was written
    with pytest.raises(restore.HookError) as caught:
        restore.check_file(dump)
    actual, expected = hashlib.sha256(DUMP[:-1]).hexdigest(), hashlib.sha256(DUMP).hexdigest()
    assert str(caught.value) == f"{dump} does not match its sha256 ({actual} != {expected}): corrupt or truncated"


@pytest.mark.parametrize("sidecar", [None, ""])
def test_check_file_needs_the_checksum_beside_it(tmp_path: Path, sidecar: str | None) -> None:
    dump = _dump(tmp_path)
    checksum = tmp_path / (dump.name + ".sha256")
    if sidecar is None:
        checksum.unlink()
    else:
        checksum.write_text(sidecar)
    with pytest.raises(restore.HookError) as caught:
        restore.check_file(dump)
    assert str(caught.value) == f"{checksum} is missing or empty; restore only dumps written by the backup hook"


def test_check_file_needs_the_dump(tmp_path: Path) -> None:
    with pytest.raises(restore.HookError) as caught:
        restore.check_file(tmp_path / "gone.dump")
    assert str(caught.value) == f"{tmp_path / 'gone.dump'} does not exist"


def test_stop_api_containers_stops_only_this_stacks_api(fake_docker: FakeDocker) -> None:
    fake_docker.set(PS="id1\nid2")
    assert restore.stop_api_containers("catalogizer-dev") == ["id1", "id2"]
    assert fake_docker.argvs() == [
        ["ps", "-q", "--filter", "label=catalogizer.stack=catalogizer-dev", "--filter", "label=catalogizer.role=api"],
        ["stop", "--time", "30", "--", "id1", "id2"],
    ]


def test_stop_api_containers_with_none_running(fake_docker: FakeDocker) -> None:
    assert restore.stop_api_containers("catalogizer-dev") == []
    assert [argv[0] for argv in fake_docker.argvs()] == ["ps"]


def test_stop_api_containers_reports_failures(fake_docker: FakeDocker) -> None:
    fake_docker.set(PS_EXIT="1", PS_ERR="cannot connect\n")
    with pytest.raises(restore.HookError) as caught:
        restore.stop_api_containers("s")
    assert str(caught.value) == "cannot list API containers: cannot connect"
    fake_docker.set(PS_EXIT="0", PS="id1", STOP_EXIT="1", STOP_ERR="permission denied\n")
    with pytest.raises(restore.HookError) as caught:
        restore.stop_api_containers("s")
    assert str(caught.value) == "cannot stop API containers: permission denied"


@pytest.fixture
def psql_input(tmp_path: Path, fake_docker: FakeDocker) -> Path:
    path = tmp_path / "psql-input.sql"
    fake_docker.set(PSQL_INPUT=str(path))
    return path


def _tool(argv: list[str]) -> str:
    """The program a docker call runs: `ps`, `stop`... or, for `exec`, the tool in the container."""
    if argv[0] != "exec":
        return argv[0]
    rest = argv[1:]
    while rest[0] in ("-i", "-e"):
        rest = rest[2:] if rest[0] == "-e" else rest[1:]
    if rest[0] == "--":  # the end of options, before the container
        rest = rest[1:]
    return rest[1]


def _db() -> backup.Database:
    return backup.Database(container="pg", user="catalogizer", name="catalogizer_db")


def test_replay_feeds_the_prologue_and_the_dump_to_one_psql_transaction(
    tmp_path: Path, fake_docker: FakeDocker, psql_input: Path
) -> None:
    dump = _dump(tmp_path / "b")
    restore.replay(_db(), dump)
    assert psql_input.read_bytes() == restore.PROLOGUE + b"-- SQL of " + DUMP
    # psql and pg_restore run side by side: the order of their starts is not fixed.
    assert sorted(fake_docker.argvs()) == [
        ["exec", "-i", "-e", "PGPASSWORD", "--", "pg", "pg_restore", "--no-owner", "--no-privileges", "--file", "-"],
        [
            "exec", "-i", "-e", "PGPASSWORD", "--", "pg",
            "psql", "--quiet", "--no-psqlrc", "--single-transaction", "--set", "ON_ERROR_STOP=1",
            "--username", "catalogizer", "--dbname", "catalogizer_db", "--output", "/dev/null",
        ],
    ]  # fmt: skip


def test_replay_reports_a_failed_transaction_without_the_password(
    tmp_path: Path, fake_docker: FakeDocker, psql_input: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "pg-password-value")
    fake_docker.set(PSQL_EXIT="3", PSQL_ERR="ERROR: relation exists (pg-password-value)\n")
    dump = _dump(tmp_path / "b")
    with pytest.raises(restore.HookError) as caught:
        restore.replay(_db(), dump)
    assert (
        str(caught.value) == f"replaying {dump.name} failed and was rolled back (exit 3): ERROR: relation exists (***)"
    )


def test_replay_reports_an_unreadable_dump(tmp_path: Path, fake_docker: FakeDocker, psql_input: Path) -> None:
    fake_docker.set(TO_SQL_EXIT="1", TO_SQL_ERR="pg_restore: error: bad input\n")
    dump = _dump(tmp_path / "b")
    with pytest.raises(restore.HookError) as caught:
        restore.replay(_db(), dump)
    assert str(caught.value) == f"pg_restore could not read {dump.name} (exit 1): pg_restore: error: bad input"


@pytest.fixture
def restore_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_docker: FakeDocker, psql_input: Path
) -> tuple[Path, Path]:
    backups = tmp_path / "backups"
    source = _dump(backups)
    current = tmp_path / "current-db.dump"
    current.write_bytes(b"PGDMP|current|")
    fake_docker.set(DUMP=str(current), PS="api1")
    for name, value in {
        "STACK_NAME": STACK,
        "BACKUP_DIR": str(backups),
        "RESTORE_FILE": str(source),
        "PG_CONTAINER": "pg",
        "PGUSER": "catalogizer",
        "PGDATABASE": "catalogizer_db",
        "PGPASSWORD": "pg-password-value",
        "API_STACK_LABEL": "catalogizer-dev",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BACKUP_KEEP", raising=False)
    return backups, source


def test_main_checks_takes_a_safety_dump_stops_the_api_then_replays(
    restore_env: tuple[Path, Path], fake_docker: FakeDocker, psql_input: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backups, source = restore_env
    restore.main()
    summary = json.loads(capsys.readouterr().out)
    safety = Path(summary["safetyDump"])
    assert summary["restored"] == str(source.resolve())
    assert summary["sha256"] == hashlib.sha256(DUMP).hexdigest()
    assert summary["stoppedApiContainers"] == 1 and 0 <= summary["seconds"] < 60
    assert safety.read_bytes() == b"PGDMP|current|" and safety.parent == backups.resolve()
    assert psql_input.read_bytes() == restore.PROLOGUE + b"-- SQL of " + DUMP
    tools = [_tool(argv) for argv in fake_docker.argvs()]
    # verify the source, dump and verify the current database, stop the API, replay.
    assert tools[:6] == ["pg_restore", "inspect", "pg_dump", "pg_restore", "ps", "stop"]
    assert sorted(tools[6:]) == ["pg_restore", "psql"]  # side by side
    for call in fake_docker.calls():
        assert "pg-password-value" not in json.dumps(call["argv"])


def test_main_keeps_the_restored_dump_through_retention(
    restore_env: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    backups, source = restore_env
    newer = [f"{STACK}_200011{d:02d}T020000000Z.dump" for d in (2, 3)]
    for name in newer:
        (backups / name).write_bytes(b"x")
    monkeypatch.setenv("BACKUP_KEEP", "2")
    restore.main()
    safety = Path(json.loads(capsys.readouterr().out)["safetyDump"])
    # The two newest are kept (one is the safety dump); the restored one, though oldest, is spared.
    assert [p.name for p in backup.dumps_of(backups, STACK)] == [source.name, newer[1], safety.name]


def test_main_keeps_ten_by_default(restore_env: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    backups, source = restore_env
    for day in range(2, 12):
        (backups / f"{STACK}_200011{day:02d}T020000000Z.dump").write_bytes(b"x")
    restore.main()
    kept = [p.name for p in backup.dumps_of(backups, STACK)]
    assert len(kept) == 11 and kept[0] == source.name and f"{STACK}_20001102T020000000Z.dump" not in kept


def test_main_stops_before_touching_anything_when_the_checksum_fails(
    restore_env: tuple[Path, Path], fake_docker: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    backups, source = restore_env
    source.write_bytes(DUMP + b"tampered")
    with pytest.raises(SystemExit) as exited:
        restore.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"restore failed: {source} does not match its sha256 (")
    assert fake_docker.calls() == []
    assert backup.dumps_of(backups, STACK) == [source]


def test_main_stops_when_pg_restore_cannot_read_the_source(
    restore_env: tuple[Path, Path], fake_docker: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    backups, source = restore_env
    _dump(backups, b"not a dump")
    with pytest.raises(SystemExit):
        restore.main()
    assert capsys.readouterr().err.startswith(f"restore failed: pg_restore cannot read {source.name}: ")
    assert [_tool(argv) for argv in fake_docker.argvs()] == ["pg_restore"]


def test_main_needs_the_api_stack_label(
    restore_env: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("API_STACK_LABEL")
    with pytest.raises(SystemExit):
        restore.main()
    assert capsys.readouterr().err == "restore failed: environment variable API_STACK_LABEL is required\n"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STACK_NAME", "a/b", "STACK_NAME 'a/b' may hold only"),
        ("BACKUP_KEEP", "many", "BACKUP_KEEP must be a whole number"),
        ("RESTORE_FILE", "", "RESTORE_FILE is required"),
        ("BACKUP_DIR", "", "BACKUP_DIR is required"),
        ("PG_CONTAINER", "", "set PG_CONTAINER (docker exec) or PGHOST"),
    ],
)
def test_main_reports_bad_settings(
    restore_env: tuple[Path, Path],
    fake_docker: FakeDocker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        restore.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("restore failed: ") and message in err
    assert fake_docker.calls() == []
