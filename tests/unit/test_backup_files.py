"""Outcome 10 of issue 10: dumps live in a private folder and temp files never follow a planted link."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import backup  # noqa: E402  (scripts/ is not a package; the hooks import hooklib the same way)
from hooklib import HookError  # noqa: E402


def test_existing_open_backup_folder_is_forced_to_0700(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    folder.chmod(0o777)
    backup.force_private(folder)
    assert folder.stat().st_mode & 0o777 == 0o700


def test_backup_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    link = tmp_path / "backups"
    link.symlink_to(target)
    with pytest.raises(HookError, match="symbolic link"):
        backup.force_private(link)
    assert target.stat().st_mode & 0o777 == 0o755


def test_take_backup_forces_the_folder_private_before_writing(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    folder.chmod(0o777)

    class NoDatabase:
        container = None
        user = name = "catalogizer"

        def argv(self, *args: object, **kwargs: object) -> list[str]:
            raise AssertionError("the folder must be private before pg_dump runs")

    with pytest.raises(AssertionError, match="private before"):
        backup.take_backup(NoDatabase(), folder, "cztest")  # type: ignore[arg-type]
    assert folder.stat().st_mode & 0o777 == 0o700


def test_write_atomically_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "dump.sha256"
    planted = tmp_path / ".dump.sha256.partial"
    planted.symlink_to(victim)
    backup.write_atomically(target, b"abc  dump\n")
    assert victim.read_text() == "precious"
    assert target.read_bytes() == b"abc  dump\n"
    assert not target.is_symlink()
    assert target.stat().st_mode & 0o777 == 0o600
    assert not planted.exists() and not planted.is_symlink()
