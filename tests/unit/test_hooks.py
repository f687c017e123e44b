"""Wiring of the pulumi-command hooks: order, triggers and how secrets reach them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from program import Deployment
from workspace import Workspace

COMMAND = "command:local:Command"
BACKUP_STDOUT = json.dumps(
    {"file": "/b/x.dump", "bytes": 10, "sha256": "ab", "seconds": 0.5, "unexpected": "not exported"}
)


def _dump(workspace: Workspace) -> str:
    dump = workspace.project / "backups" / "catalogizer-dev_20261128T000000000Z.dump"
    dump.parent.mkdir(exist_ok=True)
    dump.write_bytes(b"PGDMP fake but checksummed")
    (dump.parent / (dump.name + ".sha256")).write_text(hashlib.sha256(dump.read_bytes()).hexdigest() + "  x\n")
    return str(dump)


def test_backup_runs_before_any_api_container(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"api": {"replicas": 2}})
    backup = deployment.named("backup-pg-dump")
    assert backup.inputs["create"] == "python3 scripts/backup.py"
    for api in deployment.containers("api"):
        assert backup.urn in api.dependencies
    assert deployment.waits_for(backup, deployment.container("postgres"))
    env = backup.inputs["environment"]
    assert env["PG_CONTAINER"] == "catalogizer-dev-postgres" and env["BACKUP_KEEP"] == "5"
    assert env["BACKUP_DIR"] == str(workspace.project / "backups" / "dev")
    assert backup.is_secret("environment.PGPASSWORD")
    assert set(backup.additional_secret_outputs) >= {"stdout", "stderr"}


def test_backup_and_health_rerun_when_the_api_image_changes(workspace: Workspace) -> None:
    before = workspace.deploy("dev")
    after = workspace.deploy("dev", {"api": {"goVersion": "1.26"}})
    for name in ("backup-pg-dump", "health-verify"):
        assert before.named(name).inputs["triggers"] != after.named(name).inputs["triggers"], name
    same = workspace.deploy("dev")
    assert same.named("backup-pg-dump").inputs["triggers"] == before.named("backup-pg-dump").inputs["triggers"]


def test_backup_reruns_when_the_api_environment_changes(workspace: Workspace) -> None:
    before = workspace.deploy("dev").named("backup-pg-dump").inputs["triggers"]
    after = workspace.deploy("dev", {"api": {"logLevel": "warn"}}).named("backup-pg-dump").inputs["triggers"]
    assert before != after


def test_health_check_waits_for_nginx_and_every_api_container(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"api": {"replicas": 2}})
    health = deployment.named("health-verify")
    watched = [*deployment.containers("api"), deployment.container("nginx")]
    for container in watched:
        assert container.urn in health.dependencies
    env = health.inputs["environment"]
    assert env["HEALTH_URL"] == "https://localhost:8443/health"
    assert env["HEALTH_CA_PEM"] == deployment.outputs["tlsCertificate"]
    assert env["API_CONTAINERS"] == ",".join(deployment.outputs["containers"]["api"])
    assert health.is_secret("environment.REDIS_PASSWORD")
    assert health.inputs["create"] == "python3 scripts/health_check.py"


def test_secrets_reach_commands_only_through_environment(prod: Deployment) -> None:
    secrets = [prod.outputs[k] for k in ("adminPassword", "postgresPassword", "redisPassword")]
    for command in prod.of_type(COMMAND):
        visible = json.dumps({k: v for k, v in command.inputs.items() if k not in ("environment", "triggers")})
        assert not any(secret in visible for secret in secrets), command.name
        for key, value in command.inputs["environment"].items():
            if value in secrets:
                assert command.is_secret(f"environment.{key}"), (command.name, key)


def test_hook_outputs_are_exported_without_extra_keys(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", command_stdout={"backup-pg-dump": BACKUP_STDOUT})
    assert deployment.outputs["lastBackup"] == {"file": "/b/x.dump", "bytes": 10, "sha256": "ab", "seconds": 0.5}
    assert "lastBackup" not in deployment.secret_outputs


def test_no_restore_without_restore_from(dev: Deployment) -> None:
    assert [c.name for c in dev.of_type(COMMAND)] == ["preflight-checks", "backup-pg-dump", "health-verify"]


def test_restore_runs_after_backup_and_before_the_api(workspace: Workspace) -> None:
    dump = _dump(workspace)
    deployment = workspace.deploy("dev", {"restoreFrom": dump})
    restore = deployment.named("restore-pg-restore")
    assert restore.inputs["create"] == "python3 scripts/restore.py"
    assert restore.inputs["environment"]["RESTORE_FILE"] == dump
    assert deployment.named("backup-pg-dump").urn in restore.dependencies
    api = deployment.container("api")
    assert restore.urn in api.dependencies
    sha = hashlib.sha256(open(dump, "rb").read()).hexdigest()  # noqa: SIM115
    # Only the dump's content replaces (re-runs) the restore; any other change is an update
    # that repeats the record and restores nothing.
    assert restore.inputs["triggers"] == [sha]
    assert restore.inputs["update"] == "python3 scripts/restore.py --keep-record"
    # The API containers are recreated after a restore.
    assert {"label": "catalogizer.restored-from", "value": sha} in api.inputs["labels"]
    assert "catalogizer.restored-from" not in json.dumps(workspace.deploy("dev").container("api").inputs["labels"])


def test_a_moved_dump_or_new_setting_never_replays_the_restore(workspace: Workspace) -> None:
    dump = _dump(workspace)
    first = workspace.deploy("dev", {"restoreFrom": dump}).named("restore-pg-restore")
    moved = Path(dump).with_name("renamed.dump")
    Path(dump).rename(moved)
    Path(dump + ".sha256").rename(str(moved) + ".sha256")
    later = workspace.deploy("dev", {"restoreFrom": str(moved), "backup": {"keep": 3}}).named("restore-pg-restore")
    assert later.inputs["triggers"] == first.inputs["triggers"]
    assert later.inputs["environment"] != first.inputs["environment"]


def test_hooks_print_nothing_to_the_console(dev: Deployment) -> None:
    for hook in dev.of_type(COMMAND):
        assert hook.inputs["logging"] == "none", hook.name
        assert set(hook.additional_secret_outputs) == {"stdout", "stderr"}, hook.name


def test_hooks_follow_the_provider_docker_host(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"docker:host": "ssh://deploy@docker-host"})
    for command in deployment.of_type(COMMAND):
        assert command.inputs["environment"]["DOCKER_HOST"] == "ssh://deploy@docker-host"


def test_preflight_runs_before_every_container(prod: Deployment) -> None:
    preflight = prod.named("preflight-checks")
    assert preflight.inputs["create"] == "python3 scripts/preflight.py"
    for container in prod.of_type("docker:index/container:Container"):
        assert prod.waits_for(container, preflight), container.name
    env = preflight.inputs["environment"]
    assert env["PREFLIGHT_PORTS"] == "0.0.0.0:80,0.0.0.0:443,127.0.0.1:9090,127.0.0.1:3000,127.0.0.1:9093"
    assert env["PREFLIGHT_MIN_FREE_GB"] == "10" and env["STACK_LABEL"] == "catalogizer"
    assert env["TLS_CERT_FILE"].endswith("ssl/cert.pem")


def test_preflight_reruns_on_any_change_but_never_carries_secrets(workspace: Workspace) -> None:
    base = workspace.deploy("dev", secrets={"jwtSecret": "a" * 40}).named("preflight-checks")
    same = workspace.deploy("dev", secrets={"jwtSecret": "b" * 40}).named("preflight-checks")
    changed = workspace.deploy("dev", {"redis": {"memoryMb": 256}}, secrets={"jwtSecret": "a" * 40})
    settings_hash = base.inputs["triggers"][0]
    assert same.inputs["triggers"][0] == settings_hash  # a rotated secret is not a host change
    assert changed.named("preflight-checks").inputs["triggers"][0] != settings_hash
    assert "a" * 40 not in json.dumps(base.inputs)
