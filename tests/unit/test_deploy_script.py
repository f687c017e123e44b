"""deploy.sh: local backend, passphrase file, stack selection, then `pulumi up`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE_PULUMI = """#!/bin/sh
echo "$* | $PULUMI_BACKEND_URL | $PULUMI_CONFIG_PASSPHRASE_FILE" >> "$FAKE_LOG"
"""


def run_deploy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pulumi"
    fake.write_text(FAKE_PULUMI)
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "FAKE_LOG": str(tmp_path / "calls.log"),
    }
    return subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), *args], env=env, capture_output=True, text=True, check=False
    )


def test_first_deploy_creates_state_and_passphrase_then_runs_up(tmp_path: Path) -> None:
    result = run_deploy(tmp_path, "dev", "--yes")
    assert result.returncode == 0, result.stderr
    home = tmp_path / "home" / ".catalogizer"
    passphrase = home / "passphrase"
    assert passphrase.stat().st_mode & 0o777 == 0o600 and len(passphrase.read_text().strip()) >= 40
    assert (home / "state").is_dir()
    calls = (tmp_path / "calls.log").read_text().splitlines()
    backend = f"file://{home}/state"
    assert calls == [
        f"stack select --create dev | {backend} | {passphrase}",
        f"up --stack dev --yes | {backend} | {passphrase}",
    ]
    assert "back it up" in result.stderr
    # The passphrase itself is never printed.
    assert passphrase.read_text().strip() not in result.stdout + result.stderr


def test_second_deploy_keeps_the_passphrase(tmp_path: Path) -> None:
    run_deploy(tmp_path, "dev")
    passphrase = (tmp_path / "home" / ".catalogizer" / "passphrase").read_text()
    assert run_deploy(tmp_path, "prod").returncode == 0
    assert (tmp_path / "home" / ".catalogizer" / "passphrase").read_text() == passphrase


def test_unknown_stack_is_refused(tmp_path: Path) -> None:
    result = run_deploy(tmp_path, "qa")
    assert result.returncode == 2 and "no Pulumi.qa.yaml" in result.stderr
    assert not (tmp_path / "calls.log").exists()
