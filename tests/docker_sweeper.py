"""Removes what killed test runs left on the Docker engine (`sweep_leftovers`), without touching
the objects of live sessions that share the engine: ownership is read from the labels and names
docker_ownership.py defines.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping

import docker
import docker.errors
from docker_harness import _parse_docker_time, _remove_network, docker_client
from docker_ownership import LABEL, NAME_PREFIX, OWNER_LABEL, RUN_ID, RUN_LABEL, SCOPE_LABEL, owner_alive

log = logging.getLogger(__name__)

# When the owner (docker_ownership.OWNER) is on another host, only age can tell.
STALE_AFTER = dt.timedelta(hours=2)
_SCOPE_IN_NAME = re.compile(rf"^/?{NAME_PREFIX}([0-9a-f]{{8}})-")


def _older_than(created: str, age: dt.timedelta) -> bool:
    try:
        return dt.datetime.now(dt.UTC) - _parse_docker_time(created) > age
    except ValueError:
        return False


class _Sweeper:
    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.live_scopes: set[str] = set()

    def is_leftover(self, labels: Mapping[str, str] | None, name: str, created: str) -> bool:
        labels = labels or {}
        if labels.get(LABEL) == "1":
            if labels.get(RUN_LABEL) == RUN_ID:
                return False
            alive = owner_alive(labels.get(OWNER_LABEL, ""))
            if alive is None:
                return _older_than(created, STALE_AFTER)
            return not alive
        m = _SCOPE_IN_NAME.match(name)
        if m is None:
            return False
        if m.group(1) in self.live_scopes:
            return False
        # Unlabelled and no live scope claims it: it is a killed run's
        # leftover unless it is so new that its scope marker may be missing.
        return _older_than(created, dt.timedelta(minutes=10))

    def collect_live_scopes(self) -> None:
        for v in self.client.volumes.list(filters={"label": LABEL}):
            labels = v.attrs.get("Labels") or {}
            if not self.is_leftover(labels, v.name, v.attrs.get("CreatedAt", "")):
                self.live_scopes.add(labels.get(SCOPE_LABEL, ""))
        for c in self.client.containers.list(all=True, filters={"label": LABEL}):
            if not self.is_leftover(c.labels, c.name, c.attrs.get("Created", "")):
                self.live_scopes.add(c.labels.get(SCOPE_LABEL, ""))


def sweep_leftovers(client: docker.DockerClient | None = None) -> list[str]:
    """Remove test objects left by dead test processes; returns what was removed.

    Labelled objects of other runs go if their owning process is gone (or,
    for owners on another host, after STALE_AFTER). Unlabelled `cztest-*`
    objects, e.g. made by the program under test, go if no live scope claims
    their name. Objects of live sessions sharing this engine are never touched.
    """
    client = client or docker_client()
    sweeper = _Sweeper(client)
    sweeper.collect_live_scopes()
    removed: list[str] = []
    # Another session on this engine may remove a container between listing and inspecting it.
    for c in client.containers.list(all=True, sparse=False, ignore_removed=True):
        if sweeper.is_leftover(c.labels, c.name, c.attrs.get("Created", "")):
            try:
                client.api.remove_container(c.id, force=True, v=True)
                removed.append(f"container {c.name}")
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log.warning("could not remove leftover container %s: %s", c.name, exc)
    for n in client.networks.list(greedy=False):
        try:
            n.reload()
        except docker.errors.NotFound:
            continue  # removed by its own session meanwhile
        if sweeper.is_leftover(n.attrs.get("Labels"), n.name, n.attrs.get("Created", "")):
            try:
                _remove_network(client, n)
                removed.append(f"network {n.name}")
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log.warning("could not remove leftover network %s: %s", n.name, exc)
    for v in client.volumes.list():
        if sweeper.is_leftover(v.attrs.get("Labels"), v.name, v.attrs.get("CreatedAt", "")):
            try:
                v.remove(force=True)
                removed.append(f"volume {v.name}")
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                # Still in use by a container outside our control: report, don't fail the run.
                log.warning("could not remove leftover volume %s: %s", v.name, exc)
    return removed
