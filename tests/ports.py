"""TCP ports for the tests' own listeners, reserved among the test processes sharing this machine.

The Docker layers run side by side (test.sh). A port the kernel hands out (bind to port 0) comes
from the ephemeral range, which Docker also allocates published ports from and every outgoing
connection uses, and a port that was free when chosen can be taken before a later `pulumi up` of
the rehearsal binds it: seen once as nginx's `bind: address already in use` in the disaster
scenario while the real-service tests ran beside it. So ports come from below the ephemeral range,
each reserved by a file created with O_EXCL that names its owner process; a reservation whose owner
is gone is taken over.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import socket
import tempfile
from pathlib import Path

from docker_ownership import OWNER, owner_alive

# Below Linux's default ip_local_port_range (32768-60999) and above the registered services most
# hosts run; the ceiling drops further if this machine's ephemeral range starts lower.
PORT_RANGE = (20000, 32000)
RESERVATIONS = Path(tempfile.gettempdir()) / "catalogizer-test-ports"
ATTEMPTS = 500
# This process's reservations, given up when it exits (a killed one's are taken over later).
_HELD: list[Path] = []


@atexit.register
def _release() -> None:
    for marker in _HELD:
        with contextlib.suppress(OSError):
            if marker.read_text() == OWNER:
                marker.unlink()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _reserve(port: int) -> bool:
    """True when this process now holds the port's reservation file."""
    marker = RESERVATIONS / str(port)
    for _ in range(2):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(OSError):
                owner = marker.read_text()
                if owner == OWNER:
                    return False  # ours already, handed out before
                if owner_alive(owner) is False:
                    # Only one taker's rename succeeds; the loser finds the marker gone or new.
                    marker.rename(marker.with_name(f"{port}.stale.{os.getpid()}"))
                    marker.with_name(f"{port}.stale.{os.getpid()}").unlink()
                    continue
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(OWNER)
        _HELD.append(marker)
        return True
    return False


def _bindable(port: int) -> bool:
    # 0.0.0.0: the rehearsal's nginx publishes on every address, so any listener on the port clashes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port no other test process of this machine is given, and free on every address now."""
    RESERVATIONS.mkdir(exist_ok=True)
    with contextlib.suppress(PermissionError):
        RESERVATIONS.chmod(0o1777)  # as /tmp: root's swarm layer and a user's layers share it
    low, high = PORT_RANGE[0], min(PORT_RANGE[1], _ephemeral_floor())
    for _ in range(ATTEMPTS):
        port = random.randrange(low, high)
        if _reserve(port) and _bindable(port):
            return port
    raise RuntimeError(f"no free TCP port in {low}-{high} after {ATTEMPTS} tries (reservations: {RESERVATIONS})")
