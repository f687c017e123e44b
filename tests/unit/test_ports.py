"""The test ports (tests/ports.py) are never handed to two live test processes, and a dead
process's reservations are taken over."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ports
import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    # Eight ports, all above the privileged range and free here in all likelihood.
    low = 29100
    monkeypatch.setattr(ports, "PORT_RANGE", (low, low + 8))
    monkeypatch.setattr(ports, "RESERVATIONS", tmp_path / "reservations")
    return low, low + 8


def _other_process_takes(count: int, reservations: Path, port_range: tuple[int, int], hold: bool) -> subprocess.Popen:
    code = (
        "import sys, ports; "
        f"ports.PORT_RANGE = {port_range!r}; ports.RESERVATIONS = __import__('pathlib').Path({str(reservations)!r}); "
        f"print(*[ports.free_port() for _ in range({count})], flush=True); " + ("sys.stdin.read()" if hold else "")
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=TESTS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(TESTS_DIR)},
    )


def test_a_live_process_keeps_its_ports_and_a_killed_ones_are_taken_over(small_range: tuple[int, int]) -> None:
    other = _other_process_takes(6, ports.RESERVATIONS, small_range, hold=True)
    try:
        theirs = {int(p) for p in other.stdout.readline().split()}  # type: ignore[union-attr]
        assert len(theirs) == 6
        mine = {ports.free_port(), ports.free_port()}
        assert len(mine) == 2 and not mine & theirs
        with pytest.raises(RuntimeError, match="no free TCP port"):
            ports.free_port()  # all eight are held, by the other process or by this one
    finally:
        other.kill()  # killed: no chance to give its reservations up
        other.communicate(timeout=30)
    assert len(list(ports.RESERVATIONS.iterdir())) == 8
    # The other process is gone: its six are taken over, this process's two are still its own.
    again = {ports.free_port() for _ in range(6)}
    assert again == theirs


def test_ports_stay_below_the_ephemeral_range() -> None:
    assert ports.PORT_RANGE[1] <= 32768
    port = ports.free_port()
    assert ports.PORT_RANGE[0] <= port < min(ports.PORT_RANGE[1], ports._ephemeral_floor())


def test_a_process_gives_its_reservations_up_when_it_exits(small_range: tuple[int, int]) -> None:
    other = _other_process_takes(3, ports.RESERVATIONS, small_range, hold=False)
    out, _ = other.communicate(timeout=30)
    assert len(out.split()) == 3
    assert list(ports.RESERVATIONS.iterdir()) == []
