"""Off-host backups in swarm mode: the restore drill hook finds PostgreSQL's task on the data node
(PG_SERVICE through DOCKER_HOST), as the backup and restore hooks do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_docker import FakeDocker

from scripts import restore_drill


@pytest.fixture
def drill_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_docker: FakeDocker) -> dict[str, object]:
    """scripts/restore_drill.py's environment as components/restore_drill.py gives it in swarm mode;
    the drill itself is recorded, not run (tests/real and tests/swarm run it for real)."""
    for name, value in {
        "STACK_NAME": "catalogizer-dev",
        "BACKUP_DIR": str(tmp_path / "backups"),
        "PG_SERVICE": "catalogizer-dev-postgres",
        "DOCKER_HOST": "unix:///data-node.sock",
        "PGUSER": "catalogizer",
        "PGDATABASE": "catalogizer_db",
        "PGPASSWORD": "pg-password-value",
        "RESTIC_REPOSITORY": str(tmp_path / "repository"),
        "RESTIC_PASSWORD": "repository-password-value",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PG_CONTAINER", raising=False)
    seen: dict[str, object] = {}

    class Repository:
        @classmethod
        def from_env(cls, stack: str, directory: Path) -> str:
            return f"repository of {stack}"

    def drill(db: restore_drill.Database, repository: str, directory: Path, wanted: str) -> dict[str, object]:
        seen.update(container=db.container, repository=repository, wanted=wanted)
        return {"ok": True, "tables": 1, "rows": 2}

    monkeypatch.setattr(restore_drill, "Repository", Repository)
    monkeypatch.setattr(restore_drill, "drill", drill)
    monkeypatch.setattr(restore_drill.sys, "argv", ["restore_drill.py"])
    return seen


def test_the_drill_restores_into_postgres_task_on_the_data_node(
    drill_env: dict[str, object], fake_docker: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_docker.set(PS="pgtask0123")
    restore_drill.main()
    assert json.loads(capsys.readouterr().out)["ok"] is True
    # The task container `docker ps` found on the data node (hooklib.use_service_container) is the one
    # the drill execs into; the single-host PG_CONTAINER was never set.
    assert drill_env == {"container": "pgtask0123", "repository": "repository of catalogizer-dev", "wanted": "latest"}
    (ps,) = fake_docker.argvs()
    assert ps[:3] == ["ps", "--quiet", "--no-trunc"]
    assert "label=com.docker.swarm.service.name=catalogizer-dev-postgres" in ps


def test_the_drill_says_where_no_postgres_task_runs(
    drill_env: dict[str, object], fake_docker: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_docker.set(PS="")
    with pytest.raises(SystemExit):
        restore_drill.main()
    err = capsys.readouterr().err
    assert "service catalogizer-dev-postgres" in err and "unix:///data-node.sock" in err
    assert drill_env == {}  # nothing was restored anywhere
