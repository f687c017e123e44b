"""The smoke test's Automation-API plumbing against a fake `pulumi` executable.

The fake records every call (arguments, folder, backend and passphrase environment) and answers
`version`, `up`, `destroy`, `stack output` and `stack history` the way the real CLI does, so the
SDK's own parsing runs on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from smoke.plumbing import CannotRun, SmokeFailed, ThrowawayStack, find_cli, flatten_config
from smoke.scenarios import Run

ROOT = Path(__file__).resolve().parents[2]

FAKE_PULUMI = """#!{python}
import json, os, pathlib, sys

state = pathlib.Path(os.environ["FAKE_PULUMI_DIR"])
# The SDK puts --non-interactive first; what follows is the command.
args = sys.argv[2:] if sys.argv[1:2] == ["--non-interactive"] else sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps({{
        "args": args,
        "interactive": sys.argv[1:2] != ["--non-interactive"],
        "cwd": os.getcwd(),
        "backend": os.environ.get("PULUMI_BACKEND_URL"),
        "passphrase_file": os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"),
    }}) + "\\n")

def verb():
    return (state / "last-verb").read_text() if (state / "last-verb").exists() else "update"

if args[:1] == ["version"]:
    print("v3.272.0")
elif args[:1] in (["up"], ["destroy"]):
    name = "update" if args[0] == "up" else "destroy"
    (state / "last-verb").write_text(name)
    if (state / ("fail-" + args[0])).exists():
        print("Updating (smoke):")
        print("error: health check failed: api-0 answered 502", file=sys.stderr)
        sys.exit(255)
    print("Updating (smoke):")
    print("Resources: done")
elif args[:2] == ["stack", "output"]:
    outputs = json.loads((state / "outputs.json").read_text())
    secret = set(json.loads((state / "secret.json").read_text()))
    if "--show-secrets" not in args:
        outputs = {{k: ("[secret]" if k in secret else v) for k, v in outputs.items()}}
    print(json.dumps(outputs))
elif args[:2] == ["stack", "history"]:
    changes = json.loads((state / "changes.json").read_text())[verb()]
    print(json.dumps([{{
        "kind": verb(), "startTime": "2026-11-29T06:00:00.000Z", "endTime": "2026-11-29T06:01:00.000Z",
        "message": "", "environment": {{}}, "config": {{}}, "result": "succeeded", "resourceChanges": changes,
    }}]))
"""

OUTPUTS = {
    "url": "https://localhost:8443",
    "health": {"status": "healthy", "checks": {"nginx": "ok"}},
    "adminPassword": "correct-horse-battery",
}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake CLI on PATH (and no other pulumi); yields its state folder."""
    state = tmp_path / "fake-state"
    state.mkdir()
    (state / "outputs.json").write_text(json.dumps(OUTPUTS))
    (state / "secret.json").write_text(json.dumps(["adminPassword"]))
    (state / "changes.json").write_text(json.dumps({"update": {"create": 23}, "destroy": {"delete": 19}}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "pulumi"
    cli.write_text(FAKE_PULUMI.format(python=sys.executable))
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_PULUMI_DIR", str(state))
    monkeypatch.setenv("CATALOGIZER_HOME", str(tmp_path / "no-home"))
    return state


def calls(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


def verbs(state: Path) -> list[list[str]]:
    return [c["args"] for c in calls(state) if c["args"] != ["version"]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project folder standing in for this one (copying the real one works the same)."""
    folder = tmp_path / "project-src"
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / "components").mkdir()
    (folder / "components" / "api.py").write_text("# component\n")
    (folder / "__main__.py").write_text("# program\n")
    (folder / "Pulumi.yaml").write_text("name: catalogizer\nruntime: python\n")
    (folder / "Pulumi.dev.yaml").write_text("config: {}\n")
    (folder / "backups").mkdir()
    (folder / "backups" / "old.dump").write_text("not copied")
    return folder


def open_stack(tmp_path: Path, project: Path) -> ThrowawayStack:
    stack = ThrowawayStack(
        tmp_path / "run", find_cli(), name="smoke-test1", log=lambda _line: None, project_dir=project
    )
    stack.open()
    return stack


# -- finding the CLI ---------------------------------------------------------------------------------


def test_without_a_cli_it_cannot_run_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CannotRun, match=r"Pulumi CLI is not installed \(not on PATH, not in .*/bin\)") as caught:
        find_cli(home=tmp_path / "home")
    assert "./test.sh smoke" in str(caught.value) and "./deploy.sh dev" in str(caught.value)


def test_the_command_reports_it_cannot_run_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + ":/nonexistent", "HOME": str(tmp_path)}
    env.pop("CATALOGIZER_HOME", None)
    done = subprocess.run(
        [sys.executable, "-m", "smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith("[smoke] cannot run: the Pulumi CLI is not installed")


def test_the_cli_deploy_sh_installs_is_found(tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "catalogizer-home"
    (home / "bin").mkdir(parents=True)
    (tmp_path / "bin" / "pulumi").rename(home / "bin" / "pulumi")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    cli = find_cli(home=home)
    assert cli.command == str(home / "bin" / "pulumi") and str(cli.version) == "3.272.0"


def test_a_too_old_cli_cannot_run(tmp_path: Path, fake: Path) -> None:
    cli = tmp_path / "bin" / "pulumi"
    cli.write_text(cli.read_text().replace('print("v3.272.0")', 'print("v3.100.0")'))
    with pytest.raises(CannotRun, match="is not usable"):
        find_cli()


# -- config from the scenario -------------------------------------------------------------------------


def test_config_is_flattened_to_path_keys() -> None:
    flat = flatten_config(
        {
            "catalogizer:namePrefix": "smk1",
            "catalogizer:api": {"source": "/tmp/x", "replicas": 2, "image": None},
            "catalogizer:monitoring": {"enabled": False},
            "catalogizer:adminPassword": "s3cret-s3cret",
        },
        secret_keys=frozenset({"catalogizer:adminPassword"}),
    )
    assert {k: (v.value, v.secret) for k, v in flat.items()} == {
        "catalogizer:namePrefix": ("smk1", False),
        "catalogizer:api.source": ("/tmp/x", False),
        "catalogizer:api.replicas": ("2", False),
        "catalogizer:monitoring.enabled": ("false", False),
        "catalogizer:adminPassword": ("s3cret-s3cret", True),
    }
    hooks = flatten_config({"catalogizer:alerts": {"webhookUrls": ["https://a.example", "https://b.example"]}})
    assert {k: v.value for k, v in hooks.items()} == {
        "catalogizer:alerts.webhookUrls[0]": "https://a.example",
        "catalogizer:alerts.webhookUrls[1]": "https://b.example",
    }
    with pytest.raises(ValueError, match="has a dot"):
        flatten_config({"catalogizer:api": {"a.b": "x"}})


def test_the_rehearsal_stack_file_flattens_completely() -> None:
    config = yaml.safe_load((ROOT / "Pulumi.rehearsal.yaml").read_text())["config"]
    flat = flatten_config(config)
    assert flat["catalogizer:api.source"].value == "tests/standin_catalogizer"
    assert flat["catalogizer:proxy.httpsPort"].value == "8443"
    leaves = sum(len(v) if isinstance(v, dict) else 1 for v in config.values())
    assert len(flat) == leaves


def test_the_scenario_config_is_the_rehearsal_stack_with_this_runs_own_names_and_ports(tmp_path: Path) -> None:
    run = Run(tmp_path / "run", log=lambda _line: None)
    flat = {k: v.value for k, v in flatten_config(run.config()).items()}
    assert flat["catalogizer:namePrefix"] == run.prefix and run.prefix.startswith("smk")
    assert flat["catalogizer:api.source"] == str(run.checkout)
    assert (run.checkout / "catalog-api" / "Dockerfile").is_file()
    assert flat["catalogizer:proxy.httpsPort"] == str(run.https_port) != "8443"
    assert flat["catalogizer:api.replicas"] == "2"
    assert flat["catalogizer:backup.dir"] == str(tmp_path / "run" / "backups")
    # Everything else is the rehearsal stack's: the locally built images, the dev environment.
    rehearsal = {
        k: v.value
        for k, v in flatten_config(yaml.safe_load((ROOT / "Pulumi.rehearsal.yaml").read_text())["config"]).items()
    }
    for key in (
        "catalogizer:postgres.image",
        "catalogizer:redis.image",
        "catalogizer:proxy.image",
        "catalogizer:appEnv",
    ):
        assert flat[key] == rehearsal[key]
    other = Run(tmp_path / "other", log=lambda _line: None)
    assert other.prefix != run.prefix

    run.set_version("smoke-v2")
    assert "ARG VERSION=smoke-v2\n" in (run.checkout / "catalog-api" / "Dockerfile").read_text()
    original = ROOT / "tests" / "standin_catalogizer" / "catalog-api" / "Dockerfile"
    assert "smoke-v2" not in original.read_text()


# -- stack creation, config, up, destroy, clean-up ----------------------------------------------------


def test_stack_is_created_in_a_copy_with_its_own_backend_and_passphrase_file(
    tmp_path: Path, fake: Path, project: Path
) -> None:
    stack = open_stack(tmp_path, project)
    work = tmp_path / "run" / "project"
    assert (work / "components" / "api.py").is_file() and (work / "__main__.py").is_file()
    assert not (work / ".venv").exists() and not (work / "backups").exists()
    assert not (work / "Pulumi.dev.yaml").exists()
    settings = yaml.safe_load((work / "Pulumi.yaml").read_text())
    assert settings["runtime"]["options"]["virtualenv"] == str(project / ".venv")
    passphrase = tmp_path / "run" / "passphrase"
    assert passphrase.stat().st_mode & 0o777 == 0o600

    (init,) = [c for c in calls(fake) if c["args"][:2] == ["stack", "init"]]
    assert init["args"] == ["stack", "init", "smoke-test1"]
    assert init["cwd"] == str(work)
    assert init["backend"] == f"file://{tmp_path / 'run' / 'state'}"
    assert init["passphrase_file"] == str(passphrase)
    assert not any(c["interactive"] for c in calls(fake) if c["args"] != ["version"])
    secret = passphrase.read_text().strip()
    assert not any(secret in " ".join(c["args"]) for c in calls(fake))
    stack.close()


def test_config_up_and_destroy_reach_the_cli_and_results_are_parsed(tmp_path: Path, fake: Path, project: Path) -> None:
    stack = open_stack(tmp_path, project)
    stack.configure({"catalogizer:namePrefix": "smk1", "catalogizer:api": {"replicas": 2}})
    up = stack.up("1 fresh up")
    destroyed = stack.destroy("3 destroy")
    stack.close()

    assert verbs(fake)[1] == [
        "config", "set-all", "--stack", "smoke-test1", "--path",
        "--plaintext", "catalogizer:namePrefix=smk1", "--plaintext", "catalogizer:api.replicas=2",
    ]  # fmt: skip
    up_call = next(a for a in verbs(fake) if a[0] == "up")
    assert up_call[:3] == ["up", "--yes", "--skip-preview"] and up_call[-2:] == ["--stack", "smoke-test1"]
    destroy_call = next(a for a in verbs(fake) if a[0] == "destroy")
    assert "--exclude-protected" in destroy_call

    assert up.result == "succeeded" and up.kind == "update" and up.changes == {"create": 23}
    assert up.outputs["url"] == "https://localhost:8443" and up.outputs["health"]["status"] == "healthy"
    assert up.secret_outputs == {"adminPassword"}
    assert up.line().startswith("[smoke] 1 fresh up: ") and up.line().endswith("succeeded (23 create)")
    assert destroyed.kind == "destroy" and destroyed.changes == {"delete": 19} and destroyed.outputs == {}


def test_a_failed_up_names_the_step_and_pulumis_error(tmp_path: Path, fake: Path, project: Path) -> None:
    (fake / "fail-up").write_text("")
    stack = open_stack(tmp_path, project)
    with pytest.raises(SmokeFailed, match=r"(?s)2 update under load: pulumi up failed:.*health check failed: api-0"):
        stack.up("2 update under load")
    stack.close()


def test_close_removes_the_stack_and_every_file_of_the_run(tmp_path: Path, fake: Path, project: Path) -> None:
    stack = open_stack(tmp_path, project)
    assert stack.close() == []
    assert ["stack", "rm", "--yes", "--force", "smoke-test1"] in verbs(fake)
    assert not (tmp_path / "run").exists()
    assert project.is_dir() and (project / "backups" / "old.dump").is_file()


def test_close_reports_a_stack_it_could_not_remove(tmp_path: Path, fake: Path, project: Path) -> None:
    stack = open_stack(tmp_path, project)
    cli = tmp_path / "bin" / "pulumi"
    cli.write_text(cli.read_text() + "if args[:2] == ['stack', 'rm']:\n    sys.exit(3)\n")
    problems = stack.close()
    assert len(problems) == 1 and problems[0].startswith("stack rm smoke-test1")
    assert not (tmp_path / "run").exists()
