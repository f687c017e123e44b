"""A service's running tasks on the test swarm, and SQL in PostgreSQL's task on its data node, as an
operator would run it there: the swarm tests read and write the `restore_probe` table with it around
backups and restores."""

from __future__ import annotations

import os

import docker
from cluster import SwarmCluster


def running_tasks(client: docker.DockerClient, service: str) -> list[dict]:
    """The service's tasks meant to run that do run (not those still starting or shutting down)."""
    tasks = client.api.tasks(filters={"service": service, "desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running"]


def task_container(client: docker.DockerClient, service: str) -> tuple[str, str]:
    """(node ID, container ID) of the service's one running task."""
    (task,) = running_tasks(client, service)
    return task["NodeID"], task["Status"]["ContainerStatus"]["ContainerID"]


def psql(cluster: SwarmCluster, container: str, password: str, sql: str) -> str:
    """SQL in PostgreSQL's task on the data node; the password reaches it through the environment."""
    result = cluster.data.docker(
        "exec", "-e", "PGPASSWORD", container,
        "psql", "-h", "127.0.0.1", "-U", "catalogizer", "-d", "catalogizer", "-v", "ON_ERROR_STOP=1", "-tAc", sql,
        env={**os.environ, "PGPASSWORD": password},
    )  # fmt: skip
    return result.stdout.strip()


def probe_rows(cluster: SwarmCluster, container: str, password: str) -> list[tuple[str, str]]:
    text = psql(cluster, container, password, "select id, note from restore_probe order by id")
    return [tuple(line.split("|", 1)) for line in text.splitlines()]  # type: ignore[misc]
