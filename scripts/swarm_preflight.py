#!/usr/bin/env python3
"""Swarm preflight: refuse to deploy unless the cluster is what catalogizer:cluster says.

Checks, before any resource of the stack is created or changed:
- DOCKER_HOST (the Docker provider's host) is a Swarm manager (`docker info`: Swarm.ControlAvailable);
- at least one Ready node carries EDGE_LABEL=true, and exactly one carries DATA_LABEL=true;
- DATA_NODE_HOST is that data node's own engine (its `docker info` Swarm.NodeID);
- free space, at least PREFLIGHT_MIN_FREE_GB (catalogizer:preflight.minFreeGb): on the data node's
  Docker data root, where PostgreSQL's and Redis's volumes live (measured through DATA_NODE_HOST, with
  PREFLIGHT_PROBE_IMAGE when that engine is remote), and on BACKUP_DIR here, where the dumps are
  written; scripts/preflight.check_disk, as on one host;
- the registry answers the registry API over REGISTRY_SCHEME (https, or http for a registry configured
  as http://host:port): GET /v2/ returns the header Docker-Distribution-API-Version
  (distribution/distribution registry/handlers/app.go sets it on every response of the API);
- with an off-host repository (RESTIC_REPOSITORY, RESTIC_PASSWORD and the backend's variables in the
  environment): restic is installed here, where the hooks run, and the repository answers and is
  initialised (`restic init` on first use), as the single-host preflight checks it.
Exit 0 prints one JSON summary; exit 1 says what is wrong and how to fix it.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hooklib import HookError, docker, docker_host, emit, env, fail, scrub
from preflight import check_disk, check_repository, disk_floor

# The schemes catalogizer:cluster.registry can mean: HTTPS unless written http://host:port.
REGISTRY_SCHEMES = ("https", "http")


def _docker_json(args: list[str], what: str) -> object:
    result = docker(args, timeout=60)
    if result.returncode != 0:
        raise HookError(f"{what}: {scrub(result.stderr.decode(errors='replace').strip())}")
    return json.loads(result.stdout)


def check_manager() -> str:
    swarm = _docker_json(["info", "--format", "{{json .Swarm}}"], "docker info")
    assert isinstance(swarm, dict)
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise HookError(
            f"{os.environ.get('DOCKER_HOST', 'the local Docker engine')} is not a Swarm manager "
            f"(state {swarm.get('LocalNodeState')!r}); point docker:host at a manager, or use cluster.mode=single."
        )
    return str(swarm.get("NodeID"))


def labelled_nodes(edge_label: str, data_label: str) -> tuple[list[str], list[str]]:
    ids = docker(["node", "ls", "--quiet"], timeout=60).stdout.decode().split()
    nodes = _docker_json(["node", "inspect", "--", *ids], "docker node inspect") if ids else []
    assert isinstance(nodes, list)
    ready = [n for n in nodes if n["Status"]["State"] == "ready" and n["Spec"].get("Availability") == "active"]
    edge = [n["ID"] for n in ready if n["Spec"].get("Labels", {}).get(edge_label) == "true"]
    data = [n["ID"] for n in nodes if n["Spec"].get("Labels", {}).get(data_label) == "true"]
    if not edge:
        raise HookError(
            f"no ready node is labelled {edge_label}=true, so nginx could run nowhere; "
            f"`docker node update --label-add {edge_label}=true <node>` on the node(s) with the public address."
        )
    if len(data) != 1:
        raise HookError(
            f"{len(data)} nodes are labelled {data_label}=true; exactly one must be (PostgreSQL and Redis and "
            f"their volumes live there): `docker node update --label-add {data_label}=true <node>` "
            f"(and --label-rm on the others)."
        )
    return edge, data


def check_data_node(data_node: str, host: str) -> None:
    with docker_host(host):
        result = docker(["info", "--format", "{{.Swarm.NodeID}}"], timeout=60)
    if result.returncode != 0:
        error = scrub(result.stderr.decode(errors="replace").strip())
        raise HookError(f"catalogizer:cluster.dataNodeHost {host} does not answer: {error}")
    seen = result.stdout.decode().strip()
    if seen != data_node:
        raise HookError(
            f"catalogizer:cluster.dataNodeHost {host} is node {seen or '(not in a swarm)'}, but the node labelled "
            f"data is {data_node}; set dataNodeHost to the data node's Docker host, or move the label."
        )


def check_data_node_disk(host: str, floor_gb: float, backup_dir: Path, probe_image: str | None) -> dict[str, float]:
    """The single-host disk check pointed at the data node's engine (the backup folder stays local)."""
    with docker_host(host):
        return check_disk(floor_gb, backup_dir, probe_image, engine=f" on the data node ({host})")


def check_registry(registry: str, scheme: str, timeout: float) -> str:
    """GET /v2/ over exactly the configured scheme: the engines pull over it, so the other one answering
    proves nothing (and an http:// registry probed over https fails on the handshake, not on the registry)."""
    if scheme not in REGISTRY_SCHEMES:
        raise HookError(f"REGISTRY_SCHEME must be one of {', '.join(REGISTRY_SCHEMES)}, got {scheme!r}")
    host = registry.split("/", 1)[0]
    url = f"{scheme}://{host}/v2/"
    written = f"http://{registry}" if scheme == "http" else registry
    request = urllib.request.Request(url, headers={"User-Agent": "catalogizer-preflight"})
    context = ssl.create_default_context() if scheme == "https" else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            version = answer.headers.get("Docker-Distribution-API-Version")
    except urllib.error.HTTPError as exc:  # 401: a registry that wants a login still answers
        version = exc.headers.get("Docker-Distribution-API-Version")
    except (OSError, ValueError) as exc:
        other = (
            "; if it is a plain-HTTP registry on a private network, write it as http://host:port"
            if scheme == "https"
            else "; if it serves HTTPS, write it without http://"
        )
        raise HookError(
            f"catalogizer:cluster.registry {written} does not answer as a registry over {scheme} ({url}): {exc}{other}"
        ) from None
    if not version:
        raise HookError(
            f"catalogizer:cluster.registry {written} does not answer as a registry over {scheme} ({url}): it answered, "
            "but without the Docker-Distribution-API-Version header"
        )
    return f"{scheme}://{host} ({version})"


def main() -> None:
    started = time.monotonic()
    try:
        manager = check_manager()
        edge, data = labelled_nodes(env("EDGE_LABEL"), env("DATA_LABEL"))
        data_host = env("DATA_NODE_HOST")
        check_data_node(data[0], data_host)
        backup_dir = Path(env("BACKUP_DIR"))
        free = check_data_node_disk(data_host, disk_floor(), backup_dir, os.environ.get("PREFLIGHT_PROBE_IMAGE"))
        registry = check_registry(env("REGISTRY"), env("REGISTRY_SCHEME", "https"), 10.0)
        repository = check_repository(backup_dir) if os.environ.get("RESTIC_REPOSITORY") else None
    except (HookError, OSError, ValueError, KeyError) as exc:
        fail(f"swarm preflight failed: {exc}")
    emit(
        {
            "manager": manager,
            "edgeNodes": len(edge),
            "dataNode": data[0],
            "freeGb": free,
            "registry": registry,
            **({"repository": repository} if repository is not None else {}),
            "seconds": round(time.monotonic() - started, 3),
        }
    )


if __name__ == "__main__":
    main()
