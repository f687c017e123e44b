"""scripts/backup.py without a container: naming, retention, atomic writes, fsync, argv.

The docker CLI is a stand-in (tests/fake_docker.py); tests/real runs the same code
against a real PostgreSQL.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from fake_docker import FakeDocker

from scripts import backup

STACK = "catalogizer-dev"
DUMP = b"PGDMP|one|two|three"  # the stand-in's pg_restore --list shows one entry per "|"


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes | None]]:
    """Records each fsync: the path synced and, for a file, its content at that moment."""
    calls: list[tuple[str, bytes | None]] = []
    real = os.fsync

    def record(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        calls.append((path, Path(path).read_bytes() if Path(path).is_file() else None))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return calls


@pytest.fixture
def pg_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_docker: FakeDocker) -> Path:
    dump = tmp_path / "pg_dump.out"
    dump.write_bytes(DUMP)
    fake_docker.set(DUMP=str(dump))
    monkeypatch.setenv("PG_CONTAINER", "catalogizer-dev-postgres")
    monkeypatch.setenv("PGUSER", "catalogizer")
    monkeypatch.setenv("PGDATABASE", "catalogizer_db")
    monkeypatch.setenv("PGPASSWORD", "pg-password-value")
    monkeypatch.delenv("PGHOST", raising=False)
    return tmp_path / "backups"


def _db() -> backup.Database:
    return backup.Database(container="pg", user="catalogizer", name="catalogizer_db")


def test_database_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGUSER", "u")
    monkeypatch.setenv("PGDATABASE", "d")
    monkeypatch.setenv("PG_CONTAINER", "pg")
    monkeypatch.delenv("PGHOST", raising=False)
    assert backup.Database.from_env() == backup.Database(container="pg", user="u", name="d")
    monkeypatch.setenv("PG_CONTAINER", "")
    monkeypatch.setenv("PGHOST", "postgres")
    assert backup.Database.from_env() == backup.Database(container=None, user="u", name="d")
    monkeypatch.delenv("PGHOST")
    with pytest.raises(backup.HookError) as caught:
        backup.Database.from_env()
    assert str(caught.value) == "set PG_CONTAINER (docker exec) or PGHOST (direct connection)"


def test_the_password_goes_to_docker_exec_by_name_never_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "pg-password-value")
    db = _db()
    assert db.argv("pg_dump", "-x") == ["docker", "exec", "-e", "PGPASSWORD", "--", "pg", "pg_dump", "-x"]
    assert db.argv("pg_restore", stdin=True) == ["docker", "exec", "-i", "-e", "PGPASSWORD", "--", "pg", "pg_restore"]
    direct = backup.Database(container=None, user="u", name="d")
    assert direct.argv("pg_dump", "-x", stdin=True) == ["pg_dump", "-x"]
    assert not any("pg-password-value" in word for word in db.argv("pg_dump", stdin=True))


def test_describe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "postgres")
    assert _db().describe() == "catalogizer_db in pg"
    assert backup.Database(container=None, user="u", name="d").describe() == "d at postgres"


def test_summary_rounds_seconds() -> None:
    result = backup.BackupResult(file=Path("/b/x.dump"), bytes=7, sha256="ab", seconds=1.23456)
    assert result.summary() == {"file": "/b/x.dump", "bytes": 7, "sha256": "ab", "seconds": 1.235}


@pytest.mark.parametrize("stack", ["prod", "catalogizer-dev", "a.b_c-1", "9"])
def test_safe_stack_names(stack: str) -> None:
    assert backup.safe_stack_name(stack) == stack


@pytest.mark.parametrize("stack", ["", "-x", "../etc", "a/b", "a b", ".hidden", "x*"])
def test_unsafe_stack_names(stack: str) -> None:
    with pytest.raises(backup.HookError, match="may hold only letters, digits"):
        backup.safe_stack_name(stack)


def test_dump_names_sort_by_time_to_the_millisecond() -> None:
    now = datetime.datetime(2026, 11, 28, 2, 3, 4, 56789, tzinfo=datetime.UTC)
    assert backup.dump_name("prod", now) == "prod_20261128T020304056Z.dump"
    later = now + datetime.timedelta(milliseconds=1)
    assert backup.dump_name("prod", now) < backup.dump_name("prod", later)


def _touch(directory: Path, *names: str) -> None:
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / name).write_bytes(name.encode())


def test_dumps_of_lists_only_this_stacks_dumps_oldest_first(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "prod_20261128T020000000Z.dump",
        "prod_20261127T020000000Z.dump",
        "prod_20261127T020000000Z.dump.sha256",
        ".prod_20261129T020000000Z.dump.partial",
        "prod-eu_20261126T020000000Z.dump",
        "prod_2026112T020000000Z.dump",
        "prod_20261126T020000000Z.dumpx",
        "notes.txt",
    )
    assert [p.name for p in backup.dumps_of(tmp_path, "prod")] == [
        "prod_20261127T020000000Z.dump",
        "prod_20261128T020000000Z.dump",
    ]
    assert [p.name for p in backup.dumps_of(tmp_path, "prod-eu")] == ["prod-eu_20261126T020000000Z.dump"]


def _dumps(directory: Path, count: int) -> list[str]:
    names = [f"{STACK}_200011{day:02d}T020000000Z.dump" for day in range(1, count + 1)]
    for name in names:
        _touch(directory, name, name + ".sha256")
    return names


def test_retention_deletes_the_oldest_dumps_and_their_checksums(tmp_path: Path) -> None:
    names = _dumps(tmp_path, 5)
    _touch(tmp_path, "other_20261101T020000000Z.dump")
    removed = backup.apply_retention(tmp_path, STACK, 2)
    assert [p.name for p in removed] == names[:3]
    left = sorted(p.name for p in tmp_path.iterdir())
    kept = names[3:]
    assert left == sorted([*kept, *(n + ".sha256" for n in kept), "other_20261101T020000000Z.dump"])


def test_retention_with_room_to_spare_deletes_nothing(tmp_path: Path) -> None:
    names = _dumps(tmp_path, 3)
    assert backup.apply_retention(tmp_path, STACK, 3) == []
    assert backup.apply_retention(tmp_path, STACK, 10) == []
    assert len(list(tmp_path.iterdir())) == 2 * len(names)


def test_retention_keeps_one(tmp_path: Path) -> None:
    names = _dumps(tmp_path, 3)
    assert [p.name for p in backup.apply_retention(tmp_path, STACK, 1)] == names[:2]
    assert [p.name for p in backup.dumps_of(tmp_path, STACK)] == names[-1:]


def test_retention_never_deletes_a_spared_dump(tmp_path: Path) -> None:
    names = _dumps(tmp_path, 4)
    spared = tmp_path / "." / names[0]  # compared resolved
    removed = backup.apply_retention(tmp_path, STACK, 2, spare=(spared,))
    assert [p.name for p in removed] == [names[1]]
    assert (tmp_path / names[0]).exists() and (tmp_path / (names[0] + ".sha256")).exists()
    assert not (tmp_path / names[1]).exists() and not (tmp_path / (names[1] + ".sha256")).exists()


def test_retention_tolerates_a_missing_checksum(tmp_path: Path) -> None:
    names = _dumps(tmp_path, 2)
    (tmp_path / (names[0] + ".sha256")).unlink()
    assert [p.name for p in backup.apply_retention(tmp_path, STACK, 1)] == names[:1]


def test_write_atomically_replaces_the_file_only_when_complete(
    tmp_path: Path, fsynced: list[tuple[str, bytes | None]]
) -> None:
    target = tmp_path / "status.json"
    target.write_bytes(b"old")
    backup.write_atomically(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]
    # The data was synced in a hidden partial file while the target still held the old bytes.
    assert fsynced == [(str(tmp_path / ".status.json.partial"), b"new content")]


def test_write_atomically_truncates_a_leftover_partial(tmp_path: Path) -> None:
    (tmp_path / ".s.partial").write_bytes(b"a much longer leftover from a crash")
    backup.write_atomically(tmp_path / "s", b"short")
    assert (tmp_path / "s").read_bytes() == b"short"


def test_verify_dump_counts_table_of_contents_entries(tmp_path: Path, fake_docker: FakeDocker) -> None:
    dump = tmp_path / "x.dump"
    dump.write_bytes(DUMP)
    assert backup.verify_dump(_db(), dump) == 3
    assert fake_docker.argvs() == [["exec", "-i", "-e", "PGPASSWORD", "--", "pg", "pg_restore", "--list"]]


def test_verify_dump_refuses_an_unreadable_dump(
    tmp_path: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"not a dump")
    with pytest.raises(backup.HookError) as caught:
        backup.verify_dump(_db(), dump)
    assert str(caught.value) == (
        "pg_restore cannot read x.dump: pg_restore: error: input file does not appear to be a valid archive"
    )


def _take(directory: Path) -> backup.BackupResult:
    return backup.take_backup(backup.Database.from_env(), directory, STACK)


def test_take_backup_writes_a_verified_synced_checksummed_dump(
    pg_env: Path, fake_docker: FakeDocker, fsynced: list[tuple[str, bytes | None]]
) -> None:
    result = _take(pg_env)
    dump = result.file
    assert dump.parent == pg_env.resolve() and dump.read_bytes() == DUMP
    assert backup.dumps_of(pg_env, STACK) == [pg_env / dump.name]
    sha = hashlib.sha256(DUMP).hexdigest()
    assert (result.bytes, result.sha256) == (len(DUMP), sha)
    assert (pg_env / (dump.name + ".sha256")).read_text() == f"{sha}  {dump.name}\n"
    assert sorted(p.name for p in pg_env.iterdir()) == [dump.name, dump.name + ".sha256"]
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert stat.S_IMODE(pg_env.stat().st_mode) == 0o700
    assert 0 <= result.seconds < 60
    # The dump's data, then its checksum, then the folder's entries reach the disk.
    assert fsynced == [
        (str(pg_env / f".{dump.name}.partial"), DUMP),
        (str(pg_env / f".{dump.name}.sha256.partial"), f"{sha}  {dump.name}\n".encode()),
        (str(pg_env), None),
    ]
    assert fake_docker.argvs() == [
        ["inspect", "--format", "{{.State.Status}}", "--", "catalogizer-dev-postgres"],
        [
            "exec", "-e", "PGPASSWORD", "--", "catalogizer-dev-postgres",
            "pg_dump", "--format=custom", "--username", "catalogizer", "--dbname", "catalogizer_db",
        ],
        ["exec", "-i", "-e", "PGPASSWORD", "--", "catalogizer-dev-postgres", "pg_restore", "--list"],
    ]  # fmt: skip
    for call in fake_docker.calls():
        assert "pg-password-value" not in json.dumps(call["argv"])
    assert [c["env"]["PGPASSWORD"] for c in fake_docker.calls()[1:]] == ["pg-password-value"] * 2


def test_two_backups_in_a_row_keep_both(pg_env: Path) -> None:
    first, second = _take(pg_env), _take(pg_env)
    assert first.file != second.file
    assert backup.dumps_of(pg_env, STACK) == sorted([pg_env / first.file.name, pg_env / second.file.name])


def test_take_backup_without_a_container_runs_the_tools_directly(
    pg_env: Path, fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scheduler's sidecar reaches PostgreSQL over the network: no `docker inspect`, no exec.
    monkeypatch.setenv("PGHOST", "postgres")
    direct = backup.Database(container=None, user="catalogizer", name="catalogizer_db")
    result = backup.take_backup(direct, pg_env, STACK)
    assert result.bytes == len(DUMP)
    assert fake_docker.argvs() == [
        ["exec", "(direct)", "pg_dump", "--format=custom", "--username", "catalogizer", "--dbname", "catalogizer_db"],
        ["exec", "(direct)", "pg_restore", "--list"],
    ]


def test_a_stopped_database_fails_before_dumping(pg_env: Path, fake_docker: FakeDocker) -> None:
    fake_docker.set(STATUS="exited")
    with pytest.raises(backup.HookError) as caught:
        _take(pg_env)
    assert str(caught.value) == "PostgreSQL is not reachable: container catalogizer-dev-postgres is exited"
    assert len(fake_docker.calls()) == 1


def test_a_failed_pg_dump_leaves_no_file_and_says_why_without_the_password(
    pg_env: Path, fake_docker: FakeDocker
) -> None:
    fake_docker.set(DUMP_EXIT="3", DUMP_ERR="pg_dump: error: password pg-password-value rejected\n")
    with pytest.raises(backup.HookError) as caught:
        _take(pg_env)
    assert str(caught.value) == (
        "pg_dump of catalogizer_db in catalogizer-dev-postgres failed (exit 3): pg_dump: error: password *** rejected"
    )
    assert list(pg_env.iterdir()) == []


def test_an_empty_dump_is_refused(pg_env: Path, fake_docker: FakeDocker) -> None:
    empty = pg_env.parent / "empty"
    empty.write_bytes(b"")
    fake_docker.set(DUMP=str(empty))
    with pytest.raises(backup.HookError) as caught:
        _take(pg_env)
    assert str(caught.value) == "pg_dump of catalogizer_db produced an empty file"
    assert list(pg_env.iterdir()) == []


def test_an_unreadable_dump_is_not_kept(pg_env: Path, fake_docker: FakeDocker) -> None:
    bad = pg_env.parent / "bad"
    bad.write_bytes(b"garbage")
    fake_docker.set(DUMP=str(bad))
    with pytest.raises(backup.HookError, match=r"pg_restore cannot read \.catalogizer-dev_\d{8}T\d{9}Z\.dump\.partial"):
        _take(pg_env)
    assert list(pg_env.iterdir()) == []


def test_an_uncreatable_backup_folder_is_reported(pg_env: Path) -> None:
    pg_env.parent.joinpath("file").write_text("x")
    with pytest.raises(backup.HookError) as caught:
        _take(pg_env.parent / "file" / "backups")
    assert str(caught.value).startswith(f"cannot create backup folder {pg_env.parent / 'file' / 'backups'}: ")


def test_an_unwritable_backup_folder_is_reported(pg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pg_env.mkdir()
    real_open = os.open

    def refuse(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if str(path).endswith(".partial"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(backup.HookError) as caught:
        _take(pg_env)
    assert str(caught.value) == f"cannot write the dump to {pg_env}: Permission denied"


def _main(monkeypatch: pytest.MonkeyPatch, directory: Path, **env: str) -> None:
    monkeypatch.setenv("STACK_NAME", STACK)
    monkeypatch.setenv("BACKUP_DIR", str(directory))
    monkeypatch.delenv("BACKUP_KEEP", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    backup.main()


def test_main_backs_up_prints_the_summary_and_applies_retention(
    pg_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _dumps(pg_env, 3)
    _main(monkeypatch, pg_env, BACKUP_KEEP="2")
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"file", "bytes", "sha256", "seconds"}
    new = Path(summary["file"])
    assert summary["bytes"] == len(DUMP) and summary["sha256"] == hashlib.sha256(DUMP).hexdigest()
    assert [p.name for p in backup.dumps_of(pg_env, STACK)] == [old[-1], new.name]


def test_main_keeps_ten_by_default(pg_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = _dumps(pg_env, 10)
    _main(monkeypatch, pg_env)
    assert [p.name for p in backup.dumps_of(pg_env, STACK)][:9] == old[1:]
    assert len(backup.dumps_of(pg_env, STACK)) == 10


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BACKUP_KEEP": "0"}, "backup failed: BACKUP_KEEP must be at least 1\n"),
        ({"BACKUP_KEEP": "x"}, "backup failed: environment variable BACKUP_KEEP must be a whole number, got 'x'\n"),
        ({"STACK_NAME": "../x"}, "backup failed: STACK_NAME '../x' may hold only letters, digits, '.', '_' and '-'\n"),
        ({"BACKUP_DIR": ""}, "backup failed: environment variable BACKUP_DIR is required\n"),
    ],
)
def test_main_reports_bad_settings(
    pg_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    message: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        _main(monkeypatch, pg_env, **env)
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert (captured.err, captured.out) == (message, "")
    assert not pg_env.exists()
