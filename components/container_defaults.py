"""What every container of the stack shares: labels, log rotation, limits, the health wait,
and the resource options that make replacements behave under the real engine."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker

from components.hook_support import PROJECT_DIR
from settings import LOG_MAX_FILE, LOG_MAX_SIZE, Settings

LABEL_STACK = "catalogizer.stack"
LABEL_ROLE = "catalogizer.role"

LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": LOG_MAX_SIZE, "max-file": LOG_MAX_FILE}

# Property paths whose change replaces a container instead of updating it in place:
# - "#initerror": a container that failed its health wait is recorded with an init error
#   (pulumi-terraform-bridge pkg/tfbridge/provider.go Create returns the partial state as
#   InitErrors). Without this, the next run's diff is empty and the engine silently accepts
#   the broken container; with it, applyReplaceOnChanges in pulumi/pulumi
#   pkg/resource/deploy/step_generator.go turns the init error into a replacement.
# - "healthcheck": terraform-provider-docker's resourceDockerContainerUpdate applies only
#   restart, memory and CPU settings, so an edited health check would never reach Docker.
# - "tmpfs": not ForceNew in the provider's schema (resource_docker_container.go) and not applied
#   by its update either, so an edited tmpfs list would otherwise never reach Docker.
REPLACE_ON_CHANGES = ["#initerror", "healthcheck", "tmpfs"]


def labels(settings: Settings, role: str) -> list[dict[str, str]]:
    """Labels that let operators (and the hook scripts) find the stack's objects by role."""
    return [
        {"label": LABEL_STACK, "value": settings.name_prefix},
        {"label": LABEL_ROLE, "value": role},
    ]


@dataclass(frozen=True)
class Hardening:
    """CIS Docker Benchmark section 5 controls for one role; docs/security.md tabulates them."""

    # Added back after dropping ALL (5.3); names as in capabilities(7), without CAP_.
    cap_add: tuple[str, ...] = ()
    # 5.12: root filesystem read-only, with these tmpfs mounts for what the image writes.
    read_only: bool = False
    tmpfs: tuple[str, ...] = ()
    # None keeps the image's user; set where the image would otherwise run as root.
    user: str | None = None
    # 5.28 asks for a PIDs limit; pulumi-docker 5.2's Container has no pids_limit input, so
    # RLIMIT_NPROC stands in. The kernel counts it per uid (threads included) and does not
    # apply it to root, so it bounds the non-root users the services run as.
    nproc: int = 256
    # Default 5.11 CPU share when the role has no `cpus` key.
    cpus: str = "0.5"


# Mount options for every tmpfs: no devices, no set-uid, no executables, bounded size.
TMPFS_OPTIONS = "rw,nosuid,nodev,noexec,size=64m"

HARDENING: dict[str, Hardening] = {
    # The master (root) binds 80/443, chowns its temp folders and starts workers as `nginx`.
    "nginx": Hardening(
        cap_add=("CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE"),
        read_only=True,
        tmpfs=("/var/cache/nginx", "/run", "/tmp"),
        nproc=64,
    ),
    # Runs as its own uid with group 0 (see components/postgres.py), so needs no capability.
    "postgres": Hardening(read_only=True, tmpfs=("/var/run/postgresql", "/tmp"), nproc=512),
    # The image's redis uid (999 in redis:7 alpine and Debian) with group 0, reading the root-owned
    # 0640 redis.conf; no entrypoint chown/privilege drop, so no capability.
    "redis": Hardening(read_only=True, tmpfs=("/tmp",), user="999:0", nproc=128),
    # The image runs as appuser (uid 1001) on port 8080: no capability needed. Not read-only:
    # see docs/security.md (config.json is written next to the binary in /app).
    "api": Hardening(nproc=512, cpus="2"),
    "backup-scheduler": Hardening(read_only=True, tmpfs=("/tmp", "/var/lib/catalogizer-backup"), nproc=64),
    # The ACME sidecar (components/acme.py) keeps the image's root, with no capability at all:
    # it signals nginx's master, which is root, and the kernel lets a process signal one of its
    # own uid without CAP_KILL (kill(2)); the files it writes are root's 0600, which nginx's
    # master (root without CAP_DAC_OVERRIDE) can read only as their owner.
    "acme": Hardening(read_only=True, tmpfs=("/tmp",), nproc=64, cpus="0.25"),
    "prometheus": Hardening(nproc=256, cpus="1"),
    "grafana": Hardening(nproc=256),
    # Uploads its config (the provider's upload at "/" needs a writable root).
    "alertmanager": Hardening(nproc=128, cpus="0.25"),
    "blackbox-exporter": Hardening(nproc=64, cpus="0.25"),
    # No files: the Go exporters write nothing.
    "postgres-exporter": Hardening(read_only=True, tmpfs=("/tmp",), nproc=64, cpus="0.25"),
    "redis-exporter": Hardening(read_only=True, tmpfs=("/tmp",), nproc=64, cpus="0.25"),
    "nginx-exporter": Hardening(read_only=True, tmpfs=("/tmp",), nproc=64, cpus="0.25"),
}


def hardening_inputs(role: str, cpus: str | None = None) -> dict[str, Any]:
    spec = HARDENING[role]
    inputs: dict[str, Any] = {
        # 5.25: a set-uid binary or file capability can never raise privileges.
        "security_opts": ["no-new-privileges:true"],
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=list(spec.cap_add)),
        "cpus": cpus or spec.cpus,
        "ulimits": [docker.ContainerUlimitArgs(name="nproc", soft=spec.nproc, hard=spec.nproc)],
    }
    if spec.read_only:
        inputs["read_only"] = True
        inputs["tmpfs"] = dict.fromkeys(spec.tmpfs, TMPFS_OPTIONS)
    if spec.user is not None:
        inputs["user"] = spec.user
    return inputs


def managed_container(
    settings: Settings, role: str, *extra_labels: dict[str, str], memory_mb: int, cpus: str | None = None
) -> dict[str, Any]:
    """Container inputs every container of the stack gets, the role's hardening included."""
    return {
        **hardening_inputs(role, cpus),
        "labels": [*labels(settings, role), *extra_labels],
        "log_driver": LOG_DRIVER,
        "log_opts": LOG_OPTS,
        "restart": "unless-stopped",
        "memory": memory_mb,
        # Unset, Docker stores MemorySwap = 2 x Memory, the provider reads it back (a diff on
        # every run) and a later raise of `memory` above it fails; equal means no swap at all.
        "memory_swap": memory_mb,
        # `pulumi up` fails unless Docker reports the container healthy within the timeout.
        "wait": True,
        "wait_timeout": settings.health.wait_timeout_seconds,
    }


LABEL_CONFIG = "catalogizer.config-sha256"


def config_carrier(
    settings: Settings,
    role: str,
    *,
    image: pulumi.Input[str],
    volume: pulumi.Input[str],
    directory: str,
    uploads: Sequence[docker.ContainerUploadArgs],
    parent: pulumi.Resource,
) -> tuple[docker.Container, dict[str, pulumi.Input[str]]]:
    """A created-but-never-started container that writes `uploads` into `volume`.

    The provider uploads every file with CopyToContainer at path "/" (resource_docker_container_funcs.go,
    `dstPath := "/"`), and the Docker daemon refuses an archive at "/" for a container whose root
    filesystem is read-only ("container rootfs is marked read-only"), even when the files land in a
    volume. So the read-only service container gets no uploads: this carrier, with a writable root,
    receives them into the shared volume, which the service then mounts read-only. `start=False`:
    the provider uploads before it would start (it never does); `must_run=False` keeps a stopped
    container from counting as drift. Returns the carrier and a label that changes with the
    content, so the service container is replaced (labels are ForceNew) whenever its files change.
    """
    carrier = docker.Container(
        f"{settings.name_prefix}-{role}-config",
        name=f"{settings.name_prefix}-{role}-config",
        image=image,
        start=False,
        must_run=False,
        network_mode="none",
        command=["true"],
        uploads=list(uploads),
        mounts=[docker.ContainerMountArgs(target=directory, type="volume", source=volume)],
        labels=labels(settings, f"{role}-config"),
        security_opts=["no-new-privileges:true"],
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
    )
    contents = [u.content for u in uploads]
    digest = pulumi.Output.all(*contents).apply(
        lambda values: hashlib.sha256("\0".join(str(v) for v in values).encode()).hexdigest()
    )
    return carrier, {"label": LABEL_CONFIG, "value": digest}


def container_options(
    parent: pulumi.Resource, *, fixed_name: bool, depends_on: Sequence[pulumi.Resource] = ()
) -> pulumi.ResourceOptions:
    """Replacement order is always explicit: pulumi-docker registers docker_container with
    DeleteBeforeReplace: true (provider/resources.go), and the engine follows the provider
    unless the program sets the option itself (deleteBeforeReplaceDefined).

    A fixed name or host port can exist only once, so those containers go first; the API
    containers have neither, so their replacement is healthy before the old one is deleted.
    """
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=list(depends_on),
        delete_before_replace=fixed_name,
        replace_on_changes=REPLACE_ON_CHANGES,
    )


@dataclass(frozen=True)
class HealthProbe:
    """A role's Docker health check, declared once beside the role (components/api.py, postgres.py,
    redis.py, proxy.py): the single-host container (`container_healthcheck`) and the Swarm service
    (components/swarm/task_defaults.healthcheck) are rendered from the same probe, so the two
    topologies cannot drift apart."""

    test: tuple[str, ...]
    interval: int = 5
    retries: int = 12
    start_period: int = 10
    timeout: int = 5

    def fields(self) -> dict[str, Any]:
        """The inputs under the names both provider types take (ContainerHealthcheckArgs and
        ServiceTaskSpecContainerSpecHealthcheckArgs have the same fields)."""
        return {
            "tests": list(self.test),
            "interval": f"{self.interval}s",
            "timeout": f"{self.timeout}s",
            "retries": self.retries,
            "start_period": f"{self.start_period}s",
        }


def container_healthcheck(probe: HealthProbe) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(**probe.fields())


def healthcheck(
    test: list[str], interval: int = 5, retries: int = 12, start_period: int = 10
) -> docker.ContainerHealthcheckArgs:
    """A single-host-only container's health check (the sidecars, monitoring)."""
    return container_healthcheck(HealthProbe(tuple(test), interval, retries, start_period))


def env_list(variables: Mapping[str, str]) -> list[str]:
    """A container's `envs` ("NAME=value") from the mapping a Swarm service's `env` takes."""
    return [f"{name}={value}" for name, value in variables.items()]


def sidecar_image(
    settings: Settings, name: str, role: str, dockerfile: Path, base_image: str, parent: pulumi.Resource
) -> docker.Image:
    """A sidecar's image (backup scheduler, ACME), built on the Docker host from this project's
    folder (`.dockerignore` lets only scripts/ and dockerfiles/ in) on one of the stack's own
    images, `BASE_IMAGE`: no registry holds it, and nothing is pushed."""
    return docker.Image(
        name,
        image_name=f"{settings.name_prefix}-{role}:latest",
        build=docker.DockerBuildArgs(
            context=str(PROJECT_DIR),
            dockerfile=str(dockerfile),
            args={"BASE_IMAGE": base_image},
            platform=settings.api.platform,
        ),
        skip_push=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
