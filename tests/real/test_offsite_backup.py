"""Off-host copies against real repositories: a local folder, an SFTP host, a REST server.

For each: preflight initialises the repository on first use; the backup hook pushes every
verified dump with its checksum and manifest, tagged with stack and kind; retention applies
per stack (another stack's snapshots stay); check passes; `restoreFrom: restic:latest` brings
the data back. No secret ever reaches an argv or an output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from docker.models.containers import Container
from docker_harness import DockerScope
from offsite_targets import (
    BACKUP,
    PREFLIGHT,
    RESTORE,
    Target,
    hook_env,
    local_target,
    preflight_env,
    rest_target,
    sftp_target,
)
from services import psql_exec, start_postgres

ROWS_SQL = "SELECT count(*), md5(string_agg(id || ':' || title, ',' ORDER BY id)) FROM media"

TARGETS: dict[str, Callable[[DockerScope, Path], Target]] = {
    "local": lambda scope, work: local_target(work),
    "sftp": sftp_target,
    "rest": rest_target,
}


@pytest.fixture
def database(docker_scope: DockerScope) -> tuple[Container, str]:
    password = "pg-" + os.urandom(12).hex()
    pg = start_postgres(docker_scope, docker_scope.network(), docker_scope.volume("pg-data"), password)
    psql_exec(
        docker_scope,
        pg,
        "CREATE TABLE media (id serial PRIMARY KEY, title text NOT NULL);"
        "INSERT INTO media (title) SELECT 'title ' || g FROM generate_series(1, 3000) g;"
        "CREATE TABLE tags (name text);"
        "INSERT INTO tags SELECT 'tag ' || g FROM generate_series(1, 50) g;",
    )
    return pg, password


def stack_snapshots(target: Target, stack: str, password: str) -> list[dict]:
    listed = target.restic("snapshots", "--json", "--tag", f"stack={stack}", password=password)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


@pytest.mark.parametrize("kind", list(TARGETS))
def test_push_retention_check_and_restore(
    kind: str, docker_scope: DockerScope, database: tuple[Container, str], tmp_path: Path
) -> None:
    pg, pg_password = database
    target = TARGETS[kind](docker_scope, tmp_path)
    repo_password = "repo-" + os.urandom(16).hex()
    backups = tmp_path / "backups"
    outputs: list[str] = []

    def run(script: Path, env: dict[str, str]) -> dict:
        result = target.run(script, env)
        outputs.extend([result.stdout, result.stderr])
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    # First use initialises the repository; the second run finds it.
    first = run(PREFLIGHT, preflight_env(backups, target, repo_password))["repository"]
    assert first["initialised"] == "now" and first["restic"].startswith("restic 0.")
    assert run(PREFLIGHT, preflight_env(backups, target, repo_password))["repository"]["initialised"] == "before"

    env = hook_env(pg, pg_password, backups, target, repo_password, BACKUP_KEEP="1")
    pushed = [run(BACKUP, env) for _ in range(2)]
    for summary in pushed:
        assert summary["repository"] == target.repository and summary["kind"] == "pre-update"
        assert summary["checked"] == "structure"
    assert [s["remoteSnapshots"] for s in pushed] == [1, 1]
    remote = stack_snapshots(target, "cztest", repo_password)
    assert [s["short_id"] for s in remote] == [pushed[-1]["snapshot"]]
    newest = remote[-1]
    assert sorted(newest["tags"]) == ["kind=pre-update", "stack=cztest"]
    names = sorted(Path(p).name for p in newest["paths"])
    dump = Path(pushed[-1]["file"]).name
    assert names == [dump, dump + ".manifest.json", dump + ".sha256"]
    manifest = json.loads((backups / (dump + ".manifest.json")).read_text())
    assert manifest["tables"]["public.media"]["rows"] == 3000 and manifest["tables"]["public.tags"]["rows"] == 50

    # Another stack in the same repository, pushed last and holding other data: our retention
    # leaves it alone, and our `latest` is never its snapshot.
    before = psql_exec(docker_scope, pg, ROWS_SQL)
    psql_exec(docker_scope, pg, "DELETE FROM media WHERE id > 2000")
    # A name that merely starts with ours is another stack too. A full read of the data verifies
    # every pack, as the scheduler does for a share of it.
    other = run(BACKUP, {**env, "STACK_NAME": "cztest-x", "BACKUP_KIND": "scheduled", "BACKUP_CHECK_READ_DATA": "100%"})
    assert other["checked"] == "read 100% of the data" and other["kind"] == "scheduled"
    assert [s["short_id"] for s in stack_snapshots(target, "cztest-x", repo_password)] == [other["snapshot"]]
    assert [s["short_id"] for s in stack_snapshots(target, "cztest", repo_password)] == [pushed[-1]["snapshot"]]

    restore_env = {
        **env,
        "BACKUP_DIR": str(tmp_path / "restore-side"),
        "RESTORE_SNAPSHOT": "latest",
        "API_STACK_LABEL": "cztest-none",
    }
    restored = run(RESTORE, restore_env)
    assert restored["snapshot"] == pushed[-1]["snapshot"] and restored["sha256"] == pushed[-1]["sha256"]
    assert psql_exec(docker_scope, pg, ROWS_SQL) == before

    secrets = (pg_password, repo_password)
    logged_argv = target.argv_log.read_text()
    assert "backup" in logged_argv and "forget --prune" in logged_argv and "dump" in logged_argv
    for secret in secrets:
        assert secret not in logged_argv
        for output in outputs:
            assert secret not in output


def test_a_failed_push_fails_the_hook_and_keeps_the_local_dump(
    docker_scope: DockerScope, database: tuple[Container, str], tmp_path: Path
) -> None:
    pg, pg_password = database
    target = local_target(tmp_path)
    backups = tmp_path / "backups"
    # Never initialised: restic cannot open it, so the push fails after the local checks passed.
    result = target.run(BACKUP, hook_env(pg, pg_password, backups, target, "repo-" + os.urandom(8).hex()))
    assert result.returncode == 1 and result.stdout == ""
    assert "backup failed: restic backup on" in result.stderr and str(target.repository) in result.stderr
    assert len(list(backups.glob("cztest_*.dump"))) == 1


def test_a_wrong_repository_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    target = local_target(tmp_path)
    backups = tmp_path / "backups"
    good, wrong = "repo-" + os.urandom(8).hex(), "repo-" + os.urandom(8).hex()
    assert target.run(PREFLIGHT, preflight_env(backups, target, good)).returncode == 0
    refused = target.run(PREFLIGHT, preflight_env(backups, target, wrong))
    assert refused.returncode == 1 and "preflight failed: restic cat on" in refused.stderr
    assert "cannot be initialised" in refused.stderr
    assert wrong not in refused.stderr + refused.stdout + target.argv_log.read_text()


def test_a_locked_repository_is_waited_for_and_shadowing_password_sources_are_ignored(
    database: tuple[Container, str], tmp_path: Path
) -> None:
    pg, pg_password = database
    target = local_target(tmp_path)
    backups = tmp_path / "backups"
    repo_password = "repo-" + os.urandom(8).hex()
    assert target.run(PREFLIGHT, preflight_env(backups, target, repo_password)).returncode == 0
    # restic 0.14 refuses a backup while another restic holds an exclusive lock (its `check`):
    # the first `backup` answers with the message restic 0.14.0 printed in that case, then the real one runs.
    locked_once = tmp_path / "locked-once"
    locked_once.mkdir()
    marker = tmp_path / "refused"
    (locked_once / "restic").write_text(
        "#!/bin/sh\n"
        f'if [ "$3" = backup ] && [ ! -e {marker} ]; then touch {marker}; '
        'echo "unable to create lock in backend: repository is already locked exclusively by PID 1 on vm by root '
        '(UID 0, GID 0)" >&2; exit 1; fi\n'
        f'exec {target.work / "bin" / "restic"} "$@"\n'
    )
    (locked_once / "restic").chmod(0o755)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the repository password\n")
    env = {
        **hook_env(pg, pg_password, backups, target, repo_password),
        "PATH": f"{locked_once}:{target.work / 'bin'}:{os.environ['PATH']}",
        # restic 0.14 prefers RESTIC_PASSWORD_FILE over RESTIC_PASSWORD (an operator's shell may export it).
        "RESTIC_PASSWORD_FILE": str(wrong),
        "BACKUP_LOCK_WAIT_SECONDS": "30",
    }
    result = target.run(BACKUP, env)
    assert result.returncode == 0, result.stderr
    assert (
        marker.exists() and "restic backup: the repository is locked by another restic; retrying in 2s" in result.stderr
    )
    assert json.loads(result.stdout)["remoteSnapshots"] == 1
