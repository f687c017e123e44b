"""restoreFrom in swarm mode: the graph under mocks (the restore Command after the backup and
before the API service, through the data node, no password in plain inputs) and the hook's swarm
step (scripts/swarm_api.py: the API service scaled to 0 on the manager, waited for, scaled back
only when the replay did not happen). `restic:` snapshots: test_swarm_offsite.py.
tests/swarm/test_swarm_data_tier.py runs it on a real swarm."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fake_docker import FakeDocker
from program import Deployment, Registered
from workspace import Workspace

from scripts import restore, swarm_api
from settings import ConfigError

SERVICE = "docker:index/service:Service"
SWARM = {"mode": "swarm", "registry": "10.0.0.5:5000", "dataNodeHost": "ssh://admin@data-1"}
API_SERVICE = "catalogizer-dev-api"


def _dump(workspace: Workspace) -> str:
    dump = workspace.project / "backups" / "catalogizer-dev_20261128T000000000Z.dump"
    dump.parent.mkdir(exist_ok=True)
    dump.write_bytes(b"PGDMP fake but checksummed")
    (dump.parent / (dump.name + ".sha256")).write_text(hashlib.sha256(dump.read_bytes()).hexdigest() + "  x\n")
    return str(dump)


def _api(deployment: Deployment) -> Registered:
    (api,) = [r for r in deployment.of_type(SERVICE) if r.inputs["name"] == API_SERVICE]
    return api


@pytest.fixture
def restored(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> tuple[Deployment, str]:
    monkeypatch.delenv("DOCKER_HOST", raising=False)  # the manager is the local engine here
    dump = _dump(workspace)
    return workspace.deploy("dev", {"cluster": SWARM, "restoreFrom": dump}), dump


def test_swarm_restore_runs_after_the_backup_and_before_the_api_service(restored: tuple[Deployment, str]) -> None:
    deployment, dump = restored
    restore_hook = deployment.named("restore-pg-restore")
    backup = deployment.named("pre-update-backup-pg-dump")
    roles = deployment.named("db-roles-api-role")
    api = _api(deployment)
    assert restore_hook.inputs["create"] == "python3 scripts/restore.py"
    assert restore_hook.inputs["update"] == "python3 scripts/restore.py --keep-record"
    assert deployment.waits_for(restore_hook, backup)
    assert deployment.waits_for(roles, restore_hook)  # the restore recreates objects the role needs
    assert deployment.waits_for(api, restore_hook) and deployment.waits_for(api, roles)
    assert not deployment.waits_for(backup, restore_hook)
    environment = restore_hook.inputs["environment"]
    # PostgreSQL's task on the data node, the API service by name on the manager (the local engine).
    assert environment["PG_SERVICE"] == "catalogizer-dev-postgres"
    assert environment["DOCKER_HOST"] == "ssh://admin@data-1"
    assert environment["API_SERVICE"] == API_SERVICE
    assert environment["RESTORE_FILE"] == dump
    for single_host_only in ("PG_CONTAINER", "API_STACK_LABEL", "NGINX_VOLUME", "NGINX_IMAGE", "MANAGER_DOCKER_HOST"):
        assert single_host_only not in environment, single_host_only
    assert restore_hook.is_secret("environment.PGPASSWORD")
    sha = hashlib.sha256(Path(dump).read_bytes()).hexdigest()
    assert restore_hook.inputs["triggers"] == [sha]
    # The API service's tasks are replaced after a restore: the label changes with the dump's content.
    labels = api.inputs["taskSpec"]["containerSpec"]["labels"]
    assert labels == [{"label": "catalogizer.restored-from", "value": sha}]
    assert "lastRestore" in deployment.outputs and "lastRestore" not in deployment.secret_outputs


def test_no_restore_and_no_label_without_restore_from(workspace: Workspace) -> None:
    deployment = workspace.deploy("dev", {"cluster": SWARM})
    assert [r for r in deployment.resources if r.name == "restore-pg-restore"] == []
    assert "labels" not in _api(deployment).inputs["taskSpec"]["containerSpec"]
    assert "lastRestore" not in deployment.outputs


def test_the_hook_scales_the_api_on_the_providers_manager(workspace: Workspace) -> None:
    overrides = {"cluster": SWARM, "restoreFrom": _dump(workspace), "docker:host": "ssh://admin@manager-1"}
    environment = workspace.deploy("dev", overrides).named("restore-pg-restore").inputs["environment"]
    assert environment["MANAGER_DOCKER_HOST"] == "ssh://admin@manager-1"
    assert environment["DOCKER_HOST"] == "ssh://admin@data-1"


def test_no_password_in_any_plain_input_with_a_restore(restored: tuple[Deployment, str]) -> None:
    deployment, _ = restored
    passwords = [deployment.outputs[k] for k in ("adminPassword", "postgresPassword", "redisPassword")]
    assert all(len(p) >= 24 for p in passwords)
    leaks = deployment.plain_secret_leaks(passwords)
    assert not leaks, f"a password in plain text: {leaks}"


def test_swarm_restore_needs_a_repository_for_a_snapshot(workspace: Workspace) -> None:
    # A dump file is restored through the data node; a snapshot too, but only from a repository
    # (test_swarm_offsite.py has the wiring): without one, the same refusal as on one host.
    workspace.deploy("dev", {"cluster": SWARM, "restoreFrom": _dump(workspace)})
    failure = workspace.fails("dev", {"cluster": SWARM, "restoreFrom": "restic:latest"})
    assert isinstance(failure.error, ConfigError), failure.error
    assert "catalogizer:backup.repository is not set" in str(failure.error)
    assert failure.declared == []


class FakeManager:
    """The docker CLI on the manager, as swarm_api calls it: one service and its tasks' states."""

    def __init__(self, replicas: int | None = 3, live_polls: int = 1) -> None:
        self.replicas = replicas
        self.live_polls = live_polls  # how many `service ps` answers still show a running task
        self.calls: list[list[str]] = []
        self.fail_scale_to: int | None = None

    def __call__(self, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
        argv = list(args)
        self.calls.append(argv)
        out, code, err = "", 0, ""
        if argv[:2] == ["service", "ls"]:
            out = f"{API_SERVICE}-old\n" + (f"{API_SERVICE}\n" if self.replicas is not None else "")
        elif argv[:2] == ["service", "inspect"]:
            out = f"{self.replicas}\n"
        elif argv[:2] == ["service", "scale"]:
            wanted = int(argv[-1].rsplit("=", 1)[1])
            if wanted == self.fail_scale_to:
                code, err = 1, "Error response from daemon: rpc error\n"
            else:
                self.replicas = wanted
        elif argv[:2] == ["service", "ps"]:
            if self.live_polls > 0:
                self.live_polls -= 1
                out = "t1 Running 2 minutes ago\nt0 Shutdown 3 hours ago\n"
            else:
                out = "t1 Remove 1 second ago\nt0 Shutdown 3 hours ago\n"
        return subprocess.CompletedProcess(argv, code, out.encode(), err.encode())


def test_scale_to_zero_waits_until_no_task_runs() -> None:
    manager = FakeManager(replicas=3, live_polls=2)
    assert swarm_api.scale_to_zero(API_SERVICE, manager, wait_seconds=10, poll_seconds=0) == 3
    assert manager.replicas == 0
    assert ["service", "scale", "--detach", "--", f"{API_SERVICE}=0"] in manager.calls
    assert [c[:2] for c in manager.calls].count(["service", "ps"]) == 3  # two live answers, then none


def test_scale_to_zero_without_the_service_does_nothing() -> None:
    manager = FakeManager(replicas=None)
    assert swarm_api.scale_to_zero(API_SERVICE, manager, wait_seconds=10, poll_seconds=0) is None
    assert [c[:2] for c in manager.calls] == [["service", "ls"]]  # `-old` is not the service


def test_scale_to_zero_scales_back_when_a_task_never_stops() -> None:
    manager = FakeManager(replicas=2, live_polls=10**6)
    with pytest.raises(swarm_api.HookError) as caught:
        swarm_api.scale_to_zero(API_SERVICE, manager, wait_seconds=0.05, poll_seconds=0.01)
    assert "t1 running" in str(caught.value) and "scaled back to 2" in str(caught.value)
    assert manager.replicas == 2


def test_scale_back_reports_what_it_could_not_do() -> None:
    manager = FakeManager(replicas=0)
    manager.fail_scale_to = 3
    assert "could not scale the API service back" in swarm_api.scale_back(API_SERVICE, 3, manager)
    assert swarm_api.scale_back(API_SERVICE, None, manager) == ""


@pytest.mark.parametrize(("manager", "expected"), [("ssh://admin@manager-1", "ssh://admin@manager-1"), ("", None)])
def test_manager_calls_use_the_managers_engine(
    monkeypatch: pytest.MonkeyPatch, manager: str, expected: str | None
) -> None:
    seen: dict[str, Any] = {}

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        seen.update(argv=argv, host=kw["env"].get("DOCKER_HOST"))
        return subprocess.CompletedProcess(argv, 0, b"", b"")

    monkeypatch.setenv("DOCKER_HOST", "ssh://admin@data-1")
    monkeypatch.setenv("MANAGER_DOCKER_HOST", manager)
    monkeypatch.setattr(swarm_api.subprocess, "run", run)
    swarm_api.manager_docker(["service", "ls"], 30)
    assert seen == {"argv": ["docker", "service", "ls"], "host": expected}


@pytest.fixture
def swarm_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_docker: FakeDocker
) -> tuple[Path, FakeManager, Path]:
    backups = tmp_path / "backups"
    backups.mkdir()
    source = backups / "catalogizer-dev_20001101T020000000Z.dump"
    source.write_bytes(b"PGDMP|dump to restore|")
    (backups / (source.name + ".sha256")).write_text(hashlib.sha256(source.read_bytes()).hexdigest() + "  x\n")
    current = tmp_path / "current-db.dump"
    current.write_bytes(b"PGDMP|current|")
    psql_input = tmp_path / "psql-input.sql"
    # `docker ps` on the data node finds PostgreSQL's task container (hooklib.use_service_container).
    fake_docker.set(DUMP=str(current), PS="pgtask0123", PSQL_INPUT=str(psql_input))
    for name, value in {
        "STACK_NAME": "catalogizer-dev",
        "BACKUP_DIR": str(backups),
        "RESTORE_FILE": str(source),
        "PG_SERVICE": "catalogizer-dev-postgres",
        "DOCKER_HOST": "unix:///data-node.sock",
        "PGUSER": "catalogizer",
        "PGDATABASE": "catalogizer_db",
        "PGPASSWORD": "pg-password-value",
        "API_SERVICE": API_SERVICE,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("PG_CONTAINER", "API_STACK_LABEL", "NGINX_VOLUME", "BACKUP_KEEP"):
        monkeypatch.delenv(name, raising=False)
    manager = FakeManager(replicas=3, live_polls=1)
    monkeypatch.setattr(restore, "scale_to_zero", lambda service: swarm_api.scale_to_zero(service, manager, 10, 0))
    monkeypatch.setattr(restore, "scale_back", lambda service, n: swarm_api.scale_back(service, n, manager))
    return source, manager, psql_input


def test_swarm_restore_keeps_the_api_service_at_zero_after_the_replay(
    swarm_restore: tuple[Path, FakeManager, Path], fake_docker: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    source, manager, psql_input = swarm_restore
    restore.main()
    summary = json.loads(capsys.readouterr().out)
    assert summary["apiService"] == API_SERVICE and summary["apiReplicasStopped"] == 3
    assert "stoppedApiContainers" not in summary
    assert manager.replicas == 0  # the service update of `pulumi up` brings the declared replicas back
    assert psql_input.read_bytes() == restore.PROLOGUE + b"-- SQL of " + source.read_bytes()
    argvs = fake_docker.argvs()
    assert argvs[0][:3] == ["ps", "--quiet", "--no-trunc"] and "pgtask0123" in argvs[1]
    assert not any(argv[0] in ("stop", "start") for argv in argvs)  # no single-host container handling
    for call in fake_docker.calls():
        assert "pg-password-value" not in json.dumps(call["argv"])


def test_swarm_restore_scales_the_api_back_when_the_replay_fails(
    swarm_restore: tuple[Path, FakeManager, Path], fake_docker: FakeDocker, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_docker.set(PSQL_EXIT="3", PSQL_ERR="ERROR: boom (pg-password-value)\n")
    _, manager, _ = swarm_restore
    with pytest.raises(SystemExit):
        restore.main()
    err = capsys.readouterr().err
    assert "rolled back" in err and f"the API service {API_SERVICE} was scaled back to 3" in err
    assert "pg-password-value" not in err
    assert manager.replicas == 3


def test_swarm_restore_touches_no_service_when_the_dump_is_corrupt(
    swarm_restore: tuple[Path, FakeManager, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source, manager, _ = swarm_restore
    source.write_bytes(b"PGDMP|tampered|")
    with pytest.raises(SystemExit):
        restore.main()
    assert "does not match its sha256" in capsys.readouterr().err
    assert manager.calls == []
