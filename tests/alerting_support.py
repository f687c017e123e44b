"""Shared by the alerting tests: the program's rendered files, and its containers run by the harness.

The files and container settings come from the unmodified program run under Pulumi's mocks
(tests/program.py): what is checked and started here is what `pulumi up` would upload.
Only images (the locally built ones), names, volumes and published ports (free 127.0.0.1
ports) are swapped for the test's own.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Mapping
from typing import Any

from docker.models.containers import Container
from docker.models.networks import Network
from docker_harness import DockerScope
from images import tags
from program import Deployment, Registered

from components.backup_scheduler import DOCKERFILE
from components.hook_support import PROJECT_DIR

NS = 1_000_000_000
SCHEDULER_TAG = "catalogizer-test/backup-scheduler:latest"


def build_scheduler(scope: DockerScope) -> str:
    """The scheduler image as components/backup_scheduler.py builds it, on the test PostgreSQL."""
    image, _ = scope.client.images.build(
        path=str(PROJECT_DIR),
        dockerfile=str(DOCKERFILE.relative_to(PROJECT_DIR)),
        buildargs={"BASE_IMAGE": tags.POSTGRES},
        tag=SCHEDULER_TAG,
        rm=True,
    )
    return str(image.id)


def uploads(container: Registered) -> dict[str, dict[str, Any]]:
    return {u["file"]: u for u in container.inputs.get("uploads", [])}


def _seconds(text: str) -> int:
    assert text.endswith("s"), text
    return int(text[:-1])


def docker_healthcheck(check: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "test": list(check["tests"]),
        "interval": _seconds(check["interval"]) * NS,
        "timeout": _seconds(check["timeout"]) * NS,
        "retries": int(check["retries"]),
        "start_period": _seconds(check["startPeriod"]) * NS,
    }


def upload_tar(files: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The uploads as the provider writes them: content, mode and owner as declared."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, upload in files.items():
            data = upload["content"].encode()
            info = tarfile.TarInfo(name=path.lstrip("/"))
            info.size = len(data)
            info.mode = int(upload.get("permissions") or "0644", 8)
            info.uid = int(upload.get("owner") or 0)
            info.gid = int(upload.get("group") or 0)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def launch(
    scope: DockerScope,
    deployment: Deployment,
    role: str,
    image: str,
    network: Network,
    *,
    env_overrides: Mapping[str, str] | None = None,
    index: int = 0,
    **extra: Any,
) -> Container:
    """Creates and starts the program's container for `role` with the test's image."""
    declared = deployment.containers(role)[index]
    inputs = declared.inputs
    env = dict(item.split("=", 1) for item in inputs.get("envs", []))
    env.update(env_overrides or {})
    aliases: list[str] = []
    for net in inputs.get("networksAdvanced", []):
        aliases += net.get("aliases") or []
    # Published ports: same container ports, free 127.0.0.1 host ports (no clash with a real stack).
    ports = {int(p["internal"]): None for p in inputs.get("ports", []) if p.get("ip") == "127.0.0.1"}
    kwargs: dict[str, Any] = {
        "environment": env,
        "mem_limit": int(inputs["memory"]) * 1024 * 1024,
        "memswap_limit": int(inputs["memorySwap"]) * 1024 * 1024,
        "healthcheck": docker_healthcheck(inputs["healthcheck"]),
        **extra,
    }
    if inputs.get("command"):
        kwargs["command"] = list(inputs["command"])
    if inputs.get("stopSignal"):
        kwargs["stop_signal"] = inputs["stopSignal"]
    # Named volumes become the test's own; host folders only where the test hands one over.
    volumes = dict(kwargs.pop("volumes", {}))
    for number, mount in enumerate(inputs.get("mounts", [])):
        if mount["type"] == "volume":
            volumes[scope.volume(f"{role}-vol{number}").name] = {"bind": mount["target"], "mode": "rw"}
    if volumes:
        kwargs["volumes"] = volumes
    container = scope.container(
        image,
        role if index == 0 else f"{role}-{index}",
        network=network,
        aliases=aliases,
        ports=ports or None,
        start=False,
        **kwargs,
    )
    files = uploads(declared)
    if files:
        container.put_archive("/", upload_tar(files))
    container.start()
    container.reload()
    return container
