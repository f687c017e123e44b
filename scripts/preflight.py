#!/usr/bin/env python3
"""Preflight: the runbook's pre-deployment checklist, for what only the host can tell.

Runs first on every `pulumi up` that changes anything, before any container is created
or replaced. Each failure is one line: what is wrong and what to do.

    DOCKER_HOST=... PREFLIGHT_MIN_FREE_GB=10 BACKUP_DIR=backups STACK_LABEL=catalogizer \
    PREFLIGHT_PORTS=0.0.0.0:80,0.0.0.0:443 TLS_CERT_FILE=ssl/cert.pem PREFLIGHT_PLATFORM=linux/amd64 \
    python3 scripts/preflight.py

Checks: the Docker engine answers and is at least 20.10; the images are built for its
platform (os/arch, from PREFLIGHT_PLATFORM = catalogizer:api.platform); free space on Docker's data root
and on the backup folder is above the floor; every host port the stack publishes is free
or held by this stack's own containers; the TLS certificate file exists and has not expired
(tls.mode=acme, TLS_CERT_VOLUME: the certificate nginx serves, read from the ACME volume; an
expired one is reported, not refused, since this very run renews it).
With an off-host repository (RESTIC_REPOSITORY, RESTIC_PASSWORD and the backend's variables in
the environment): restic is installed here, where the hooks run, and the repository answers
and is initialised; on first use it is initialised (`restic init`).
stdout is one JSON object with what was found.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hooklib import HookError, docker, emit, env, fail, scrub

MIN_DOCKER = (20, 10)
GB = 1024**3


def docker_version() -> str:
    try:
        result = docker(["version", "--format", "{{.Server.Version}}"], timeout=20)
    except subprocess.TimeoutExpired:
        result = None
    if result is None or result.returncode != 0:
        where = os.environ.get("DOCKER_HOST") or "the local socket"
        detail = scrub(result.stderr.decode(errors="replace")).strip().splitlines()[-1:] if result else ["timed out"]
        raise HookError(
            f"the Docker engine at {where} does not answer ({' '.join(detail)}); start it or fix docker:host"
        )
    version = result.stdout.decode().strip()
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < MIN_DOCKER:
        raise HookError(f"Docker {version} is too old; upgrade the engine to 20.10 or newer")
    return version


def check_platform(wanted: str) -> str:
    """The host's os/arch; a build for another one fails at start with 'exec format error'."""
    result = docker(["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], timeout=20)
    host = result.stdout.decode().strip()
    if result.returncode != 0 or "/" not in host:
        raise HookError(f"cannot read the Docker host's platform: {scrub(result.stderr.decode()).strip()}")
    # Docker reports arm for every 32-bit ARM variant; the variant is the build's business.
    if wanted.split("/")[:2] != host.split("/")[:2]:
        raise HookError(
            f"the Docker host is {host} but the images would be built for {wanted}; "
            f"`pulumi config set --path catalogizer:api.platform {host}`"
        )
    return host


def docker_is_local() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    return host == "" or host.startswith("unix://")


def free_gb_local(path: Path) -> float:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free / GB


def free_gb_on_engine(path: str, probe_image: str) -> float:
    """Free space of a folder on a remote engine's host, read by a throwaway container."""
    # `--`: the image reference (from config) can never be read as an option of `docker run`.
    result = docker(["run", "--rm", "-v", f"{path}:/probe:ro", "--", probe_image, "df", "-Pk", "/probe"], timeout=120)
    if result.returncode != 0:
        raise HookError(
            f"cannot measure free space of {path} on the Docker host: {scrub(result.stderr.decode()).strip()}"
        )
    fields = result.stdout.decode().strip().splitlines()[-1].split()
    return int(fields[3]) * 1024 / GB


def docker_root() -> str:
    return docker(["info", "--format", "{{.DockerRootDir}}"], timeout=20).stdout.decode().strip() or "/var/lib/docker"


def check_outside_docker_root(root: str, folders: dict[str, str]) -> None:
    """The settings refuse /var/lib/docker; the engine's real data root may be elsewhere
    (dockerd --data-root), so the mounted host folders are checked against it here too."""
    data_root = Path(root)
    for key, folder in folders.items():
        path = Path(folder)
        if path == data_root or data_root in path.parents or path in data_root.parents:
            raise HookError(
                f"{key} {folder} is or contains Docker's data root {root}; mounting it would expose every "
                "image and volume (the database included). Use a dedicated folder."
            )


def disk_floor() -> float:
    """PREFLIGHT_MIN_FREE_GB (catalogizer:preflight.minFreeGb, which the settings keep at 1 or more), in GB."""
    raw = env("PREFLIGHT_MIN_FREE_GB", "10")
    try:
        floor = float(raw)
    except ValueError:
        floor = -1.0
    # NaN compares false with everything and would pass any floor check: refused with the negatives.
    if not 0 <= floor < float("inf"):
        raise HookError(f"PREFLIGHT_MIN_FREE_GB must be a number of GB, got {raw!r}")
    return floor


def check_disk(floor_gb: float, backup_dir: Path, probe_image: str | None, engine: str = "") -> dict[str, float]:
    """Free space on the Docker engine's data root (DOCKER_HOST's; `engine` names it in the message)
    and on the backup folder here, each at least `floor_gb`."""
    root = docker_root()
    # PREFLIGHT_DISK_PROBE=container measures through the engine even when it is local.
    if docker_is_local() and os.environ.get("PREFLIGHT_DISK_PROBE") != "container":
        docker_free = free_gb_local(Path(root))
    elif probe_image:
        docker_free = free_gb_on_engine(root, probe_image)
    else:
        raise HookError("PREFLIGHT_PROBE_IMAGE is required to measure a remote Docker host's disk")
    found = {"dockerRoot": round(docker_free, 1), "backupDir": round(free_gb_local(backup_dir), 1)}
    for label, where in (
        ("dockerRoot", f"Docker's data root {root}{engine}"),
        ("backupDir", f"the backup folder {backup_dir}"),
    ):
        if found[label] < floor_gb:
            raise HookError(
                f"only {found[label]:.1f} GB free on {where}, below the {floor_gb:g} GB floor; "
                "free space (docker image prune, old backups) or lower catalogizer:preflight.minFreeGb"
            )
    return found


def ports_of_own_containers(stack_label: str) -> set[int]:
    result = docker(["ps", "--filter", f"label=catalogizer.stack={stack_label}", "--format", "{{.Ports}}"], timeout=20)
    held: set[int] = set()
    for line in result.stdout.decode().splitlines():
        for mapping in line.split(","):
            host_side = mapping.strip().split("->")[0]
            if ":" in host_side:
                port = host_side.rsplit(":", 1)[1]
                if port.isdigit():
                    held.add(int(port))
    return held


def port_holder_container(port: int) -> str | None:
    result = docker(["ps", "--filter", f"publish={port}", "--format", "{{.Names}}"], timeout=20)
    names = result.stdout.decode().split()
    return names[0] if names else None


def check_ports(spec: str, stack_label: str) -> list[str]:
    wanted = [p.strip() for p in spec.split(",") if p.strip()]
    own = ports_of_own_containers(stack_label)
    checked = []
    for item in wanted:
        address, _, port_text = item.rpartition(":")
        port = int(port_text)
        checked.append(item)
        if port in own:
            continue
        holder = port_holder_container(port)
        if holder:
            raise HookError(
                f"host port {port} is held by container {holder}, not this stack; stop it or change the port"
            )
        if docker_is_local():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((address or "0.0.0.0", port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise HookError(
                            f"host port {port} is held by another process (see `ss -ltnp 'sport = :{port}'`); "
                            "stop it or change the port in the stack config"
                        ) from None
                    raise
    return checked


def check_certificate(path: Path) -> str:
    if not path.is_file():
        raise HookError(f"TLS certificate {path} does not exist; place it there or fix catalogizer:tls.certFile")
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-checkend", "0", "-in", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    end = result.stdout.strip().splitlines()[0].removeprefix("notAfter=") if result.stdout.strip() else "?"
    if result.returncode != 0:
        if "notAfter" in result.stdout:
            raise HookError(f"TLS certificate {path} expired on {end}; renew it before deploying")
        raise HookError(f"TLS certificate {path} is not a readable PEM certificate: {result.stderr.strip()}")
    return end


def live_certificate(volume: str, image: str) -> dict[str, object]:
    """The certificate the ACME sidecar installed (components/acme.py: current/fullchain.pem in
    the acme-certs volume), read by a throwaway container; nothing before the first deploy."""
    # `docker run -v` would create a missing volume, and the program then finds one it did not make.
    if docker(["volume", "inspect", "--", volume], timeout=20).returncode != 0:
        return {"certificateNotAfter": "none yet"}
    mount = ["--volume", f"{volume}:/certs:ro", "--entrypoint", "cat"]
    read = docker(["run", "--rm", "--network", "none", *mount, "--", image, "/certs/current/fullchain.pem"], timeout=60)
    if read.returncode != 0:
        return {"certificateNotAfter": "none yet"}
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-checkend", "0"],
        input=read.stdout,
        capture_output=True,
        check=False,
    )
    lines = result.stdout.decode().strip().splitlines()
    if not lines or not lines[0].startswith("notAfter="):
        raise HookError(f"the served certificate in volume {volume} is not a readable PEM certificate")
    # -checkend 0 exits 1 for an expired certificate: reported, and renewed by this run's acme-issue hook.
    return {"certificateNotAfter": lines[0].removeprefix("notAfter="), "certificateExpired": result.returncode != 0}


def check_repository(backup_dir: Path) -> dict[str, object] | None:
    from offsite import Repository, redacted

    repository = Repository.from_env(env("STACK_LABEL"), backup_dir)
    if repository is None:
        return None
    version = subprocess.run(["restic", "version"], capture_output=True, text=True, timeout=30, check=False)
    created = repository.ensure_initialised()
    return {
        "location": redacted(repository.location),
        "restic": version.stdout.strip().split(" compiled")[0],
        "initialised": "now" if created else "before",
    }


def main() -> None:
    try:
        summary: dict[str, object] = {"docker": docker_version()}
        if os.environ.get("PREFLIGHT_PLATFORM"):
            summary["platform"] = check_platform(env("PREFLIGHT_PLATFORM"))
        check_outside_docker_root(
            docker_root(),
            {
                key: value
                for key, value in (
                    ("catalogizer:backup.dir", os.environ.get("BACKUP_DIR", "")),
                    ("catalogizer:api.mediaRoot", os.environ.get("MEDIA_ROOT", "")),
                )
                if value
            },
        )
        summary["freeGb"] = check_disk(disk_floor(), Path(env("BACKUP_DIR")), os.environ.get("PREFLIGHT_PROBE_IMAGE"))
        summary["ports"] = check_ports(os.environ.get("PREFLIGHT_PORTS", ""), env("STACK_LABEL"))
        if os.environ.get("TLS_CERT_FILE"):
            summary["certificateNotAfter"] = check_certificate(Path(env("TLS_CERT_FILE")))
        if os.environ.get("TLS_CERT_VOLUME"):
            summary.update(live_certificate(env("TLS_CERT_VOLUME"), env("PREFLIGHT_PROBE_IMAGE")))
        repository = check_repository(Path(env("BACKUP_DIR")))
        if repository is not None:
            summary["repository"] = repository
    except HookError as exc:
        fail(f"preflight failed: {exc}")
    emit(summary)


if __name__ == "__main__":
    main()
