from __future__ import annotations

from program import Deployment
from workspace import Workspace

from components.backup_scheduler import DOCKERFILE


def test_production_runs_the_scheduler_by_default(prod: Deployment) -> None:
    scheduler = prod.container("backup-scheduler")
    env = prod.env(scheduler)
    assert env["BACKUP_SCHEDULE"] == "0 2 * * *" and env["PGHOST"] == "postgres"
    assert env["BACKUP_DIR"] == "/backups" and env["BACKUP_KEEP"] == "14" and env["STACK_NAME"] == "catalogizer"
    assert env["PGPASSWORD"] == prod.outputs["postgresPassword"] and scheduler.is_secret("envs")
    volumes = {v["containerPath"]: v for v in scheduler.inputs["volumes"]}
    assert volumes["/backups"]["hostPath"] == "/opt/catalogizer/backups"
    assert volumes["/etc/localtime"]["readOnly"] is True
    assert scheduler.inputs["healthcheck"]["tests"] == ["CMD", "python3", "/app/backup_scheduler.py", "--check"]
    assert prod.waits_for(scheduler, prod.container("postgres"))
    assert prod.waits_for(scheduler, prod.named("preflight-checks"))
    build = prod.named("backup-scheduler-image")
    assert build.inputs["build"]["dockerfile"] == str(DOCKERFILE)
    assert build.inputs["build"]["args"] == {"BASE_IMAGE": "postgres:15-alpine"}
    assert scheduler.inputs["image"] == build.state["repoDigest"]
    assert prod.outputs["containers"]["backup-scheduler"] == "catalogizer-backup-scheduler"


def test_other_stacks_opt_in(workspace: Workspace, dev: Deployment) -> None:
    assert not dev.containers("backup-scheduler")
    opted = workspace.deploy("dev", {"backup": {"scheduler": True, "schedule": "30 3 * * 0"}})
    assert opted.env(opted.container("backup-scheduler"))["BACKUP_SCHEDULE"] == "30 3 * * 0"
