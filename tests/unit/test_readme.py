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
    assert text.count("```bash\n./deploy.sh dev\n```") == 1
    assert text.count("```bash\npython -m pytest\n```") == 1
    assert "python -m pytest" in (README.parent / ".ci" / "run").read_text()
