"""Off-host backups in swarm mode under mocks: with catalogizer:backup.repository the pre-update
dump is pushed, the restore drill follows it (and any restore) through the data node, restic's
environment reaches the hooks only as secrets, and restoreFrom takes `restic:` snapshots. Also the
hooks' own swarm steps (the drill finds PostgreSQL's task on the data node; the swarm preflight
checks the repository). tests/swarm/test_swarm_data_tier.py runs the hooks on a real swarm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_docker import FakeDocker
from program import Deployment, Registered
from workspace import Workspace

from scripts import restore_drill, swarm_preflight

SERVICE = "docker:index/service:Service"
COMMAND = "command:local:Command"
SWARM = {"mode": "swarm", "registry": "10.0.0.5:5000", "dataNodeHost": "ssh://admin@data-1"}
REPO = {"backup": {"repository": "/srv/catalogizer-restic", "keepDaily": 7}}
BACKEND = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID", "AWS_SECRET_ACCESS_KEY": "backend-secret-value-123"}
PUSHED = {"file": "/b/x.dump", "bytes": 10, "sha256": "ab", "seconds": 0.5, "snapshot": "feedbeef"}
# Every hook that talks to restic in swarm mode.
RESTIC_HOOKS = ("preflight-check", "pre-update-backup-pg-dump", "restore-pg-restore", "restore-drill-drill")


def _api(deployment: Deployment) -> Registered:
    (api,) = [r for r in deployment.of_type(SERVICE) if r.inputs["name"] == "catalogizer-dev-api"]
    return api


@pytest.fixture
def offsite(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    """Swarm with a repository, backend secrets and `restoreFrom: restic:latest`."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # the manager is the local engine here
    return workspace.deploy(
        "dev",
        {"cluster": SWARM, **REPO, "restoreFrom": "restic:latest"},
        secrets={"backupRepositoryEnv": json.dumps(BACKEND)},
        command_stdout={"backup-pg-dump": json.dumps(PUSHED)},
    )


def test_the_drill_follows_the_backup_and_the_restore_and_gates_nothing(offsite: Deployment) -> None:
    drill = offsite.named("restore-drill-drill")
    backup = offsite.named("pre-update-backup-pg-dump")
    restore = offsite.named("restore-pg-restore")
    assert drill.inputs["create"] == "python3 scripts/restore_drill.py"
    assert offsite.waits_for(drill, backup) and offsite.waits_for(drill, restore)
    # With every pre-update backup, i.e. exactly when a new copy was pushed.
    assert drill.inputs["triggers"] == backup.inputs["triggers"]
    for service in offsite.of_type(SERVICE):
        assert not offsite.waits_for(service, drill), service.inputs["name"]
    # Through the data node, as the backup: PostgreSQL's service, that node's engine.
    environment = drill.inputs["environment"]
    assert environment["PG_SERVICE"] == "catalogizer-dev-postgres"
    assert environment["DOCKER_HOST"] == "ssh://admin@data-1"
    assert "PG_CONTAINER" not in environment
    # Under its component, as on one host.
    assert drill.parent.endswith("catalogizer:ops:RestoreDrill::restore-drill")
    assert offsite.named("restore-drill").type == "catalogizer:ops:RestoreDrill"


def test_restic_reaches_the_hooks_only_as_secrets(offsite: Deployment) -> None:
    password = offsite.outputs["backupRepositoryPassword"]
    assert "backupRepositoryPassword" in offsite.secret_outputs and len(password) == 32
    for name in RESTIC_HOOKS:
        command = offsite.named(name)
        env = command.inputs["environment"]
        assert env["RESTIC_REPOSITORY"] == "/srv/catalogizer-restic" and env["RESTIC_PASSWORD"] == password, name
        assert env["BACKUP_KEEP_DAILY"] == "7" and env["BACKUP_SECRET_ENV"] == "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY"
        for key in ("RESTIC_PASSWORD", *BACKEND):
            assert env[key] == BACKEND.get(key, password) and command.is_secret(f"environment.{key}"), (name, key)


def test_no_password_in_any_plain_input(offsite: Deployment) -> None:
    secrets = [offsite.outputs[k] for k in ("adminPassword", "postgresPassword", "redisPassword")]
    secrets += [offsite.outputs["backupRepositoryPassword"], BACKEND["AWS_SECRET_ACCESS_KEY"]]
    assert all(len(s) >= 24 for s in secrets)
    leaks = offsite.plain_secret_leaks(secrets)
    assert not leaks, f"a secret in plain text: {leaks}"


def test_restore_from_a_snapshot_through_the_data_node(offsite: Deployment) -> None:
    restore = offsite.named("restore-pg-restore")
    env = restore.inputs["environment"]
    assert env["RESTORE_SNAPSHOT"] == "latest" and "RESTORE_FILE" not in env
    # `latest` is the newest snapshot before the one this very run pushed of the database it replaces.
    assert env["RESTORE_EXCLUDE_SNAPSHOT"] == "feedbeef"
    assert env["PG_SERVICE"] == "catalogizer-dev-postgres" and env["DOCKER_HOST"] == "ssh://admin@data-1"
    assert env["API_SERVICE"] == "catalogizer-dev-api"
    for single_host_only in ("PG_CONTAINER", "API_STACK_LABEL", "NGINX_VOLUME", "NGINX_IMAGE"):
        assert single_host_only not in env, single_host_only
    assert restore.inputs["triggers"] == ["restic:latest"]
    api = _api(offsite)
    assert api.inputs["taskSpec"]["containerSpec"]["labels"] == [
        {"label": "catalogizer.restored-from", "value": "restic:latest"}
    ]
    assert offsite.waits_for(api, restore) and offsite.waits_for(restore, offsite.named("pre-update-backup-pg-dump"))


def test_outputs_carry_the_push_the_restore_and_the_drill(workspace: Workspace) -> None:
    drilled = {"ok": True, "snapshot": "feedbeef", "tables": 2, "rows": 10, "differences": [], "seconds": 1.0}
    deployment = workspace.deploy(
        "dev",
        {"cluster": SWARM, **REPO},
        command_stdout={"backup-pg-dump": json.dumps(PUSHED), "restore-drill-drill": json.dumps(drilled)},
    )
    assert deployment.outputs["lastBackup"] == PUSHED
    assert deployment.outputs["lastDrill"] == drilled
    assert not {"lastBackup", "lastDrill"} & deployment.secret_outputs
    assert "lastRestore" not in deployment.outputs


def test_the_preflight_checks_the_repository_before_anything_changes(offsite: Deployment) -> None:
    preflight = offsite.named("preflight-check")
    env = preflight.inputs["environment"]
    assert env["BACKUP_DIR"] and env["STACK_LABEL"] == "catalogizer-dev"
    # The first push needs an initialised repository: the preflight makes it, and everything waits for it.
    for gated in (offsite.named("pre-update-backup-pg-dump"), *offsite.of_type(SERVICE)):
        assert offsite.waits_for(gated, preflight), gated.name


def test_without_a_repository_no_restic_and_no_drill(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"cluster": SWARM})
    assert "backupRepositoryPassword" not in deployment.outputs and "lastDrill" not in deployment.outputs
    assert [r for r in deployment.resources if r.name.startswith("restore-drill")] == []
    for command in deployment.of_type(COMMAND):
        assert not any(k.startswith("RESTIC_") for k in command.inputs["environment"]), command.name


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
    monkeypatch.setattr(
        swarm_preflight, "check_data_node_disk", lambda host, floor, backup_dir, image: {"dockerRoot": 50.0}
    )
    monkeypatch.setattr(swarm_preflight, "check_registry", lambda registry, scheme, timeout: "http://r (registry/2.0)")

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


def test_swarm_preflight_without_a_repository_checks_none(
    cluster_ok: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RESTIC_REPOSITORY", raising=False)
    monkeypatch.setenv("BACKUP_DIR", "/srv/backups")  # its free space is checked in any case
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
