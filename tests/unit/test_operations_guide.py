"""Every command in docs/operations.md is one that exists and works with this program."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from program import Deployment
from workspace import Workspace

from settings import PLAIN_KEYS, SECRET_KEYS, SECRET_OBJECT_KEYS, STRUCTURED_KEYS
from settings.model import EMAIL_KEYS

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"
RUNBOOK_SECTIONS = [
    "Prerequisites",
    "Pre-deployment checklist",
    "First deployment",
    "Subsequent deployments",
    "Health checks",
    "Rolling updates",
    "Rollback",
    "Rollback with database restore",
    "Emergency rollback",
    "Common issues and remediation",
    "Maintenance windows",
    "Periodic tasks",
    "Alerts",
    "Growing past one host",
]


def command_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def known_keys() -> set[str]:
    keys = {f"catalogizer:{k}" for k in (*PLAIN_KEYS, *SECRET_KEYS)}
    keys |= {f"catalogizer:{section}.{field}" for section, fields in STRUCTURED_KEYS.items() for field in fields}
    # The object catalogizer:alerts.email is set field by field.
    keys |= {f"catalogizer:alerts.email.{field}" for field in EMAIL_KEYS}
    return keys | {"docker:host"} | {f"catalogizer:{k}" for k in SECRET_OBJECT_KEYS}


def config_key(word: str) -> str:
    """An object key set by --path (`catalogizer:backupRepositoryEnv.AWS_ACCESS_KEY_ID`) is its object's;
    a list element (webhookUrls[0]) is set through its list's key."""
    word = re.sub(r"\[\d+\]$", "", word)
    head, _, _ = word.partition(".")
    return head if head.split(":", 1)[-1] in SECRET_OBJECT_KEYS else word


def without_substitutions(line: str) -> str:
    """Replaces each (possibly nested) $(...) with X: only the literal words matter here."""
    out, depth, i = [], 0, 0
    while i < len(line):
        if line.startswith("$(", i):
            if depth == 0:
                out.append("X")
            depth += 1
            i += 2
            continue
        if depth and line[i] == "(":
            depth += 1
        elif depth and line[i] == ")":
            depth -= 1
        elif not depth:
            out.append(line[i])
        i += 1
    return "".join(out)


def words(line: str) -> list[str]:
    return shlex.split(without_substitutions(line), comments=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    workspace = Workspace(tmp_path_factory.mktemp("guide"))
    # With an off-host repository, whose outputs the guide reads too.
    deployment: Deployment = workspace.deploy("prod", {"backup": {"repository": "/srv/catalogizer-restic"}})
    return set(deployment.outputs)


def test_guide_follows_the_runbook_sections() -> None:
    headings = re.findall(r"^## \d+\. (.+)$", GUIDE.read_text(), re.M)
    assert headings == RUNBOOK_SECTIONS


def test_every_config_key_set_or_removed_exists() -> None:
    checked = 0
    for line in command_lines():
        argv = words(line)
        if argv[:3] in (["pulumi", "config", "set"], ["pulumi", "config", "rm"]):
            key = config_key(next(w for w in argv[3:] if not w.startswith("--")))
            assert key in known_keys(), f"{line!r} names an unknown key {key}"
            checked += 1
    assert checked >= 8


def test_every_script_called_exists_and_reads_the_variables_given() -> None:
    checked = 0
    for line in command_lines():
        argv = words(line)
        scripts = [w for w in argv if w.startswith("scripts/")]
        for script in scripts:
            path = ROOT / script
            assert path.is_file(), f"{line!r} calls missing {script}"
            # The script itself and the modules every hook imports.
            shared = ("hooklib.py", "backup.py", "offsite.py")
            source = "".join((ROOT / "scripts" / f).read_text() for f in (path.name, *shared))
            for assignment in argv[: argv.index("python3")] if "python3" in argv else []:
                name = assignment.split("=", 1)[0]
                if name in ("PGPASSWORD", "PGUSER", "PGDATABASE"):
                    assert name in source  # read by libpq or passed on by name
                    continue
                assert f'"{name}"' in source, f"{script} does not read {name}"
            checked += 1
    assert checked >= 3


def test_every_stack_deployed_has_a_config_file() -> None:
    for line in command_lines():
        argv = words(line)
        if argv and argv[0] == "./deploy.sh":
            assert (ROOT / f"Pulumi.{argv[1]}.yaml").is_file(), line


def test_every_stack_output_read_is_exported(exported: set[str]) -> None:
    text = "\n".join(command_lines())
    names = set(re.findall(r"pulumi stack output (\w+)", text))
    assert names and names <= exported, names - exported
