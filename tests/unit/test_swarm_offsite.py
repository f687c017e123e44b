"""Off-host backups in swarm mode: the restore drill hook finds PostgreSQL's task on the data node
(PG_SERVICE through DOCKER_HOST), as the backup and restore hooks do; the swarm preflight checks
the repository (restic here, repository initialised) before anything changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_docker import FakeDocker

from scripts import restore_drill, swarm_preflight


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


@pytest.fixture
def cluster_ok(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The swarm preflight with a healthy cluster; records what the repository check was given."""
    checked: list[Path] = []
    monkeypatch.setattr(swarm_preflight, "check_manager", lambda: "manager-id")
    monkeypatch.setattr(swarm_preflight, "labelled_nodes", lambda edge, data: (["edge-id"], ["data-id"]))
    monkeypatch.setattr(swarm_preflight, "check_data_node", lambda node, host: None)
    monkeypatch.setattr(swarm_preflight, "check_registry", lambda registry, timeout: "http://r (registry/2.0)")

    def check_repository(backup_dir: Path) -> dict[str, object]:
        checked.append(backup_dir)
        return {"location": "/srv/catalogizer-restic", "initialised": "now"}

    monkeypatch.setattr(swarm_preflight, "check_repository", check_repository)
    for name, value in {"EDGE_LABEL": "e", "DATA_LABEL": "d", "DATA_NODE_HOST": "unix:///d", "REGISTRY": "r"}.items():
        monkeypatch.setenv(name, value)
    return checked


def test_swarm_preflight_checks_the_repository(
    cluster_ok: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESTIC_REPOSITORY", "/srv/catalogizer-restic")
    monkeypatch.setenv("BACKUP_DIR", "/srv/backups")
    swarm_preflight.main()
    assert cluster_ok == [Path("/srv/backups")]
    assert json.loads(capsys.readouterr().out)["repository"] == {
        "location": "/srv/catalogizer-restic",
        "initialised": "now",
    }


def test_swarm_preflight_without_a_repository_needs_no_backup_folder(
    cluster_ok: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RESTIC_REPOSITORY", raising=False)
    monkeypatch.delenv("BACKUP_DIR", raising=False)
    swarm_preflight.main()
    assert cluster_ok == [] and "repository" not in json.loads(capsys.readouterr().out)


def test_swarm_preflight_fails_on_a_bad_repository(
    cluster_ok: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(backup_dir: Path) -> dict[str, object]:
        raise swarm_preflight.HookError("restic init on /srv/catalogizer-restic failed (exit 1): permission denied")

    monkeypatch.setattr(swarm_preflight, "check_repository", unreachable)
    monkeypatch.setenv("RESTIC_REPOSITORY", "/srv/catalogizer-restic")
    monkeypatch.setenv("BACKUP_DIR", "/srv/backups")
    with pytest.raises(SystemExit):
        swarm_preflight.main()
    captured = capsys.readouterr()
    assert captured.out == "" and "swarm preflight failed: restic init" in captured.err
