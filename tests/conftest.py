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
