"""Who owns a test's Docker objects: the labels every DockerScope puts on them, this test run's ID
and this process as their owner. The scope (docker_harness.py) writes them; the sweeper
(docker_sweeper.py) reads them to tell a live session's objects from a killed run's leftovers.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

LABEL = "catalogizer.test"
RUN_LABEL = "catalogizer.test.run"
SCOPE_LABEL = "catalogizer.test.scope"
NAME_PREFIX = "cztest-"


def _current_run_id() -> str:
    # pytest-xdist workers share PYTEST_XDIST_TESTRUNUID; using it keeps one
    # worker's sweep from deleting another worker's live containers.
    explicit = os.environ.get("CATALOGIZER_TEST_RUN_ID") or os.environ.get("PYTEST_XDIST_TESTRUNUID")
    return explicit[:16] if explicit else uuid.uuid4().hex[:12]


RUN_ID = _current_run_id()
OWNER_LABEL = "catalogizer.test.owner"


def _process_start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); split after the ")" that ends the command name.
    return stat.rpartition(")")[2].split()[19]


# Several pytest sessions (developers, xdist, CI jobs) may share one engine, so
# a sweep must only take what belongs to dead processes. Objects carry
# "<hostname>:<pid>:<process start ticks>"; the start ticks defeat pid reuse.
OWNER = f"{socket.gethostname()}:{os.getpid()}:{_process_start_ticks(os.getpid()) or '0'}"


def owner_alive(owner: str) -> bool | None:
    """True/False when the owner (an OWNER string) is on this host, None when it can't be known."""
    host, _, rest = owner.partition(":")
    pid_s, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid_s.isdigit():
        return None
    return _process_start_ticks(int(pid_s)) == ticks
