"""Off-host backups (issue 11) under mocks: settings, how restic's secrets reach the hooks and
the scheduler, the generated repository password, the drill hook and restoreFrom snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from program import Deployment
from workspace import Workspace

from settings import ConfigError

COMMAND = "command:local:Command"
REPO = {"backup": {"repository": "/srv/catalogizer-restic", "keepDaily": 7, "keepWeekly": 4}}
BACKEND = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID", "AWS_SECRET_ACCESS_KEY": "backend-secret-value-123"}


@pytest.fixture
def offsite(workspace: Workspace) -> Deployment:
    return workspace.deploy("prod", REPO, secrets={"backupRepositoryEnv": json.dumps(BACKEND)})


def test_without_a_repository_nothing_changes(dev: Deployment) -> None:
    assert "backupRepositoryPassword" not in dev.outputs and "lastDrill" not in dev.outputs
    for command in dev.of_type(COMMAND):
        assert not any(k.startswith("RESTIC_") for k in command.inputs["environment"]), command.name
    assert not [r for r in dev.resources if r.name.endswith("backupRepositoryPassword")]


def test_hooks_get_restic_secrets_only_through_their_environment(offsite: Deployment) -> None:
    password = offsite.outputs["backupRepositoryPassword"]
    assert "backupRepositoryPassword" in offsite.secret_outputs and len(password) == 32
    for name in ("preflight-checks", "backup-pg-dump", "restore-drill-drill"):
        command = offsite.named(name)
        env = command.inputs["environment"]
        assert env["RESTIC_REPOSITORY"] == "/srv/catalogizer-restic" and env["RESTIC_PASSWORD"] == password
        assert env["BACKUP_KEEP_DAILY"] == "7" and env["BACKUP_KEEP_WEEKLY"] == "4"
        assert env["BACKUP_SECRET_ENV"] == "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY"
        for key in ("RESTIC_PASSWORD", *BACKEND):
            assert env[key] == BACKEND.get(key, password) and command.is_secret(f"environment.{key}"), (name, key)
        visible = json.dumps({k: v for k, v in command.inputs.items() if k not in ("environment", "triggers")})
        assert password not in visible and BACKEND["AWS_SECRET_ACCESS_KEY"] not in visible


def test_the_repository_password_is_generated_once_and_protected(offsite: Deployment) -> None:
    generated = offsite.named("secrets-backupRepositoryPassword")
    assert generated.protect and generated.inputs["length"] == 32


def test_a_supplied_repository_password_is_used(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", REPO, secrets={"backupRepositoryPassword": "operator-chosen-pw-1"})
    assert deployment.outputs["backupRepositoryPassword"] == "operator-chosen-pw-1"
    assert deployment.named("backup-pg-dump").inputs["environment"]["RESTIC_PASSWORD"] == "operator-chosen-pw-1"


def test_scheduler_pushes_checks_and_drills(offsite: Deployment) -> None:
    scheduler = offsite.container("backup-scheduler")
    env = offsite.env(scheduler)
    assert scheduler.is_secret("envs")
    assert env["RESTIC_REPOSITORY"] == "/srv/catalogizer-restic"
    assert env["RESTIC_PASSWORD"] == offsite.outputs["backupRepositoryPassword"]
    assert env["DRILL_SCHEDULE"] == "0 4 * * 0" and env["BACKUP_CHECK_READ_DATA"] == "10%"
    assert env["AWS_SECRET_ACCESS_KEY"] == BACKEND["AWS_SECRET_ACCESS_KEY"]
    volumes = {v["containerPath"]: v for v in scheduler.inputs["volumes"]}
    assert volumes["/srv/catalogizer-restic"]["hostPath"] == "/srv/catalogizer-restic"


def test_remote_repositories_are_not_mounted(workspace: Workspace) -> None:
    deployment = workspace.deploy("prod", {"backup": {"repository": "rest:https://vault.example.com/catalogizer"}})
    scheduler = deployment.container("backup-scheduler")
    assert [v["containerPath"] for v in scheduler.inputs["volumes"]] == ["/backups", "/etc/localtime"]


def test_the_drill_follows_every_pre_update_backup_and_gates_nothing(offsite: Deployment) -> None:
    drill = offsite.named("restore-drill-drill")
    backup = offsite.named("backup-pg-dump")
    assert drill.inputs["create"] == "python3 scripts/restore_drill.py"
    assert backup.urn in drill.dependencies and drill.inputs["triggers"] == backup.inputs["triggers"]
    for api in offsite.containers("api"):
        assert not offsite.waits_for(api, drill)


def test_outputs_carry_the_snapshot_and_the_drill(workspace: Workspace) -> None:
    pushed = {
        "file": "/b/x.dump",
        "bytes": 10,
        "sha256": "ab",
        "seconds": 0.5,
        "snapshot": "1a2b3c4d",
        "repository": "rest:https://***@vault/",
        "kind": "pre-update",
        "remoteSnapshots": 3,
        "checked": "structure",
    }
    drilled = {"ok": True, "snapshot": "1a2b3c4d", "tables": 2, "rows": 10, "differences": [], "seconds": 1.0}
    deployment = workspace.deploy(
        "dev",
        REPO,
        command_stdout={"backup-pg-dump": json.dumps(pushed), "restore-drill-drill": json.dumps(drilled)},
    )
    assert deployment.outputs["lastBackup"] == pushed
    assert deployment.outputs["lastDrill"] == drilled
    assert not {"lastBackup", "lastDrill"} & deployment.secret_outputs


def test_restore_from_an_off_host_snapshot(workspace: Workspace) -> None:
    pushed = json.dumps({"file": "/b/x.dump", "sha256": "ab", "snapshot": "feedbeef"})
    deployment = workspace.deploy(
        "dev", {**REPO, "restoreFrom": "restic:latest"}, command_stdout={"backup-pg-dump": pushed}
    )
    restore = deployment.named("restore-pg-restore")
    env = restore.inputs["environment"]
    assert env["RESTORE_SNAPSHOT"] == "latest" and "RESTORE_FILE" not in env
    # `latest` is the newest snapshot before the one this very run pushed of the database it replaces.
    assert env["RESTORE_EXCLUDE_SNAPSHOT"] == "feedbeef"
    assert restore.inputs["triggers"] == ["restic:latest"]
    assert {"label": "catalogizer.restored-from", "value": "restic:latest"} in deployment.container("api").inputs[
        "labels"
    ]
    assert deployment.waits_for(deployment.named("restore-drill-drill"), restore)


def test_restore_from_a_snapshot_id(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {**REPO, "restoreFrom": "restic:0123abcd"})
    assert deployment.named("restore-pg-restore").inputs["environment"]["RESTORE_SNAPSHOT"] == "0123abcd"


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"LD_PRELOAD": "/x.so"}, "'LD_PRELOAD' is not a backend variable"),
        ({"RESTIC_PASSWORD": "sneaky-override"}, "'RESTIC_PASSWORD' is not a backend variable"),
        ({"AWS_ACCESS_KEY_ID": ["not", "text"]}, "AWS_ACCESS_KEY_ID: expected a string"),
    ],
)
def test_backend_variables_are_checked(workspace: Workspace, variables: dict, fragment: str) -> None:
    failure = workspace.fails("dev", REPO, secrets={"backupRepositoryEnv": json.dumps(variables)})
    assert isinstance(failure.error, ConfigError) and fragment in str(failure.error)
    assert failure.declared == []
    assert "sneaky-override" not in str(failure.error)


def test_backend_variables_must_be_secret(workspace: Workspace) -> None:
    failure = workspace.fails("dev", {**REPO, "backupRepositoryEnv": json.dumps(BACKEND)})
    assert "catalogizer:backupRepositoryEnv" in str(failure.error) and "plain text" in str(failure.error)
    assert BACKEND["AWS_SECRET_ACCESS_KEY"] not in str(failure.error)


def test_backend_variables_need_a_repository(workspace: Workspace) -> None:
    failure = workspace.fails("dev", secrets={"backupRepositoryEnv": json.dumps(BACKEND)})
    assert "backupRepositoryEnv" in str(failure.error) and "backup.repository is not" in str(failure.error)


def test_sftp_with_the_scheduler_is_refused_and_works_without_it(workspace: Workspace) -> None:
    sftp = {"repository": "sftp:backup@vault:/srv/catalogizer"}
    failure = workspace.fails("prod", {"backup": sftp})
    assert "catalogizer:backup.repository" in str(failure.error) and "scheduler to false" in str(failure.error)
    hooks_only = workspace.deploy("prod", {"backup": {**sftp, "scheduler": False}})
    env = hooks_only.named("backup-pg-dump").inputs["environment"]
    assert env["RESTIC_REPOSITORY"] == "sftp:backup@vault:/srv/catalogizer"


def test_hooks_scrub_the_backend_variables_they_were_told_about(monkeypatch: pytest.MonkeyPatch) -> None:
    # The hook scripts import each other flat, as they run: from their own folder.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "scripts"))
    from hooklib import scrub
    from offsite import redacted

    monkeypatch.setenv("RESTIC_PASSWORD", "repository-password-1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "backend-secret-value-123")
    monkeypatch.setenv("BACKUP_SECRET_ENV", "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY")
    text = scrub("Fatal: repository-password-1 rejected, key backend-secret-value-123")
    assert text == "Fatal: *** rejected, key ***"
    assert redacted("rest:https://user:pw@vault.example.com:8000/x") == "rest:https://***@vault.example.com:8000/x"
    assert redacted("s3:s3.amazonaws.com/bucket") == "s3:s3.amazonaws.com/bucket"
