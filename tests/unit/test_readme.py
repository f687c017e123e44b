"""The README's configuration table lists exactly the keys the settings package accepts."""

from __future__ import annotations

import re
from pathlib import Path

from settings import PLAIN_KEYS, SECRET_KEYS, SECRET_OBJECT_KEYS, STRUCTURED_KEYS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_config_table_matches_settings() -> None:
    documented = set(re.findall(r"^\| `(catalogizer:[\w.]+)` \|", README.read_text(), re.M))
    accepted = {f"catalogizer:{k}" for k in (*PLAIN_KEYS, *SECRET_KEYS, *SECRET_OBJECT_KEYS)}
    accepted |= {f"catalogizer:{section}.{k}" for section, keys in STRUCTURED_KEYS.items() for k in keys}
    assert documented == accepted


def test_readme_names_one_deploy_and_one_test_command() -> None:
    text = README.read_text()
    blocks = re.findall(r"^```bash\n(.*?)```", text, re.M | re.S)
    assert blocks == ["./deploy.sh dev\n", "./test.sh\n"]
    # The Test section shows its one command first.
    test_section = text[text.index("## Test\n") :]
    assert test_section.split("```bash\n", 1)[1].startswith("./test.sh\n")
    assert test_section.index("./test.sh\n") < test_section.index("./test.sh unit")


def test_ci_runs_the_readme_test_command_plus_lint_only() -> None:
    run = (README.parent / ".ci" / "run").read_text()
    commands = [
        line.strip() for line in run.splitlines() if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert commands == ["./test.sh", ".venv/bin/ruff check --no-cache ."]
