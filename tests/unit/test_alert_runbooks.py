"""Every alert links a section of docs/operations.md that exists, and the guide lists every alert."""

from __future__ import annotations

import re
from pathlib import Path

from rendering.alerts import ALERT_NAMES, RuleParams, alert_rules

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _alerts_part() -> str:
    text = GUIDE.read_text()
    part = text[text.index("## 13. Alerts") :]
    # Up to the next numbered section (14 has ### headings of its own).
    following = part.find("\n## ", 1)
    return part if following == -1 else part[:following]


def test_every_rule_links_a_heading_of_the_guide() -> None:
    # GitHub's anchor for "### PostgresDown" is "#postgresdown".
    anchors = {heading.lower() for heading in re.findall(r"^### (\w+)$", _alerts_part(), re.M)}
    for rule in alert_rules(RuleParams(acme_renew_days=30)):
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/operations.md" and anchor in anchors, rule["alert"]


def test_the_guide_maps_exactly_the_rendered_alerts() -> None:
    part = _alerts_part()
    table = set(re.findall(r"^\| `(\w+)` \|", part, re.M))
    headings = set(re.findall(r"^### (\w+)$", part, re.M))
    assert table == headings == set(ALERT_NAMES)


def test_every_summary_says_what_to_do() -> None:
    for rule in alert_rules(RuleParams(acme_renew_days=30)):
        summary = rule["annotations"]["summary"]
        # A verb telling the reader to act, not only a statement of the problem.
        actions = r"\b(check|read|raise|renew|prune|take|fix|start|redeploy|roll back)\b|`docker |`\./deploy"
        assert re.search(actions, summary, re.I), rule["alert"]
