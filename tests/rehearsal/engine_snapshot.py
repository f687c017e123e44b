"""The snapshot: the stack's state file (a JSON file per stack, written after every step) and the
order of its resources (pulumi/pulumi pkg/backend/snapshot.go: a completed step appends its
resource to the new snapshot; what a run did not touch follows in its old order). README.md beside
this file has the row.

`Snapshot` is one part of `Rehearsal` (rehearsal_engine.py), which sets the attributes it works on
in its `__init__`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine_run import Run
from providers_docker import ContainerProvider, NetworkProvider, VolumeProvider


class Snapshot:
    """The state between runs: resources, pending deletes (old sides of replacements), stack outputs
    and the sequence number that orders them."""

    # Set by Rehearsal.__init__.
    state_path: Path
    _lock: threading.RLock
    _seq: int
    current: dict[str, dict[str, Any]]
    pending: list[dict[str, Any]]
    outputs: dict[str, Any]
    run: Run

    # -- state file (the snapshot) --------------------------------------------------------------
    def load_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {"resources": {}, "pending_deletes": [], "outputs": {}, "seq": 0}
        return json.loads(self.state_path.read_text())

    def _save(self) -> None:
        state = {"resources": self.current, "pending_deletes": self.pending, "outputs": self.outputs, "seq": self._seq}
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
        tmp.replace(self.state_path)

    def _begin(self) -> Run:
        state = self.load_state()
        self.run = Run()
        self._seq = state.get("seq", 0)
        self.run.first_seq = self._seq
        self.current = {urn: {**e, "urn": urn} for urn, e in state["resources"].items()}
        self.pending = list(state.get("pending_deletes", []))
        self.outputs = dict(state.get("outputs", {}))
        return self.run

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _untouched_last(self, run: Run) -> None:
        """pkg/backend/snapshot.go SnapshotManager.snap: the new snapshot lists the resources this run
        operated on (in completion order), then the old ones it did not touch, in their old order.
        After a failed run that puts e.g. a service the run never reached after the config it did
        reach, so a destroy still deletes the service first."""
        with self._lock:
            # Every step that completed in this run gave its resource a new seq; a failed step (its
            # mutation ends unsuccessful: no markNew) leaves the old one, as an untouched resource has.
            untouched = [e for e in self.current.values() if e["seq"] <= run.first_seq] + self.pending
            for entry in sorted(untouched, key=lambda e: e["seq"]):
                entry["seq"] = self._next_seq()
            self._save()

    # -- inspection ----------------------------------------------------------------------------
    def docker_objects(self) -> Iterator[tuple[str, str]]:
        """(type, physical id) of every Docker object in the state, pending deletes included."""
        state = self.load_state()
        for entry in [*state["resources"].values(), *state.get("pending_deletes", [])]:
            if entry.get("type") in (ContainerProvider.token, NetworkProvider.token, VolumeProvider.token):
                yield entry["type"], entry["id"]
