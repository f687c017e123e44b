import re
import signal
import sys
import threading
from pathlib import Path

import pytest

# The program's own modules (settings, components, rendering) and the test helpers.
ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A CI timeout or test.sh's trap sends SIGTERM, which would end Python at once; as a
    # KeyboardInterrupt pytest ends the session and every fixture's teardown still runs (DockerScope
    # removes the test's containers, the swarm fixture its namespaces and engines).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


# A figure a test prints, `[tag] name: 12.3s, passed (...)`; the image build's and the sweeper's
# bookkeeping lines are not figures.
_FIGURE = re.compile(r"^\[(?!images\]|docker\])[a-z0-9-]+\] ")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # The real-service layer runs on xdist workers, whose printed figures stay in the captured output
    # of each test: gathered here so every CI log shows them (-s layers print theirs as they go).
    lines: list[str] = []
    for report in [*terminalreporter.stats.get("passed", []), *terminalreporter.stats.get("failed", [])]:
        for title, content in getattr(report, "sections", []):
            if title.startswith("Captured std"):
                lines += [line for line in content.splitlines() if _FIGURE.match(line) and line not in lines]
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)
