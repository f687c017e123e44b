"""What every Swarm service of the stack shares: labels, logs, limits, restart policy, and the
role's hardening from components/container_defaults.HARDENING, as far as a Swarm service carries it.

pulumi-docker 5.2's Service `task_spec.container_spec` has cap_adds/cap_drops, read_only, user,
mounts (tmpfs with size and mode), healthcheck, stop_grace_period, stop_signal; `task_spec.resources`
has limits (nano_cpus, memory_bytes). It has no security options (no-new-privileges), no ulimits
and no memory-swap input (TF resource_docker_service.go schema; the SDK's
ServiceTaskSpecContainerSpecArgs): docs/security.md lists what Swarm mode therefore cannot apply.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
import pulumi_docker as docker

from components.container_defaults import HARDENING, LOG_DRIVER, LOG_OPTS, HealthProbe, labels
from settings import Settings

# Size of every tmpfs a read-only role gets (the single-host TMPFS_OPTIONS' size=64m).
TMPFS_BYTES = 64 * 1024 * 1024
# 1777 as a `--tmpfs` mount gets on one host: the non-root services (postgres 70, redis 999) write there.
TMPFS_MODE = 0o1777


def service_labels(settings: Settings, role: str) -> list[docker.ServiceLabelArgs]:
    return [docker.ServiceLabelArgs(label=item["label"], value=item["value"]) for item in labels(settings, role)]


def hardened_container_spec(role: str, **spec: Any) -> docker.ServiceTaskSpecContainerSpecArgs:
    """The role's container spec: capabilities dropped, read-only root with tmpfs mounts, user.

    A service's `commands` REPLACE the image's entrypoint (moby daemon/cluster/executor/container/
    container.go: Command becomes the Entrypoint), which would skip e.g. the postgres image's
    initdb; what a container's `command` is (the image's CMD) is a service's `args`."""
    if "commands" in spec:
        raise ValueError(f"{role}: pass the command as args; commands would replace the image's entrypoint")
    hardening = HARDENING[role]
    mounts = list(spec.pop("mounts", []))
    if hardening.read_only:
        mounts += [
            docker.ServiceTaskSpecContainerSpecMountArgs(
                target=path,
                type="tmpfs",
                tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
                    size_bytes=TMPFS_BYTES, mode=TMPFS_MODE
                ),
            )
            for path in hardening.tmpfs
        ]
    if hardening.user is not None:
        spec.setdefault("user", hardening.user)
    return docker.ServiceTaskSpecContainerSpecArgs(
        cap_drops=["ALL"],
        cap_adds=list(hardening.cap_add) or None,
        read_only=hardening.read_only or None,
        mounts=mounts,
        **spec,
    )


def task_spec(
    settings: Settings,
    role: str,
    container_spec: docker.ServiceTaskSpecContainerSpecArgs,
    *,
    memory_mb: int,
    cpus: str,
    networks: list[docker.ServiceTaskSpecNetworksAdvancedArgs],
    constraints: list[str] | None = None,
    spread: bool = False,
) -> docker.ServiceTaskSpecArgs:
    return docker.ServiceTaskSpecArgs(
        container_spec=container_spec,
        resources=docker.ServiceTaskSpecResourcesArgs(
            limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                nano_cpus=round(float(cpus) * 1_000_000_000), memory_bytes=memory_mb * 1024 * 1024
            )
        ),
        # The task is restarted (or rescheduled elsewhere) whenever it ends, as `unless-stopped` does on one host.
        restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="5s"),
        log_driver=docker.ServiceTaskSpecLogDriverArgs(name=LOG_DRIVER, options=dict(LOG_OPTS)),
        networks_advanceds=networks,
        placement=docker.ServiceTaskSpecPlacementArgs(
            constraints=constraints or None,
            # The provider turns each entry into a SpreadOver descriptor as is (TF
            # resource_docker_service_structures.go stringSetToPlacementPrefs): "node.id", not "spread=node.id".
            prefs=["node.id"] if spread else None,
        ),
    )


def healthcheck(probe: HealthProbe) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    """The role's single-host health check (the same probe: test, timings), as a Swarm health check."""
    return docker.ServiceTaskSpecContainerSpecHealthcheckArgs(**probe.fields())


def converge(settings: Settings) -> docker.ServiceConvergeConfigArgs:
    """`pulumi up` waits until every replica runs (healthy, where a health check is set), as the
    single-host containers' `wait`; an update that Swarm rolls back fails the run. The provider polls
    the service's UpdateStatus and tasks (TF resource_docker_service_funcs.go
    resourceDockerServiceUpdateRefreshFunc: `rollback_completed` and `paused` are errors)."""
    return docker.ServiceConvergeConfigArgs(delay="5s", timeout=f"{settings.health.wait_timeout_seconds}s")


# How the stack's services find each other on the overlays: DNS round robin. The service name
# resolves to the addresses of its tasks, and a task is added only once its health check passes
# (the engine activates a task's service binding after the health_status healthy event: moby
# daemon/cluster/executor/container/controller.go, `Start`), so nothing is sent to a starting or
# unhealthy task. nginx resolves the API's name per request (resolver valid=1s) and retries the
# next address on error (rendering/nginx.py). The default, a virtual IP, is load-balanced by the
# kernel's IPVS, which some kernels lack (CONFIG_IP_VS; the test machine's, for one), and then
# answers nothing at all.
ENDPOINT_MODE = "dnsrr"


def internal_endpoint() -> docker.ServiceEndpointSpecArgs:
    return docker.ServiceEndpointSpecArgs(mode=ENDPOINT_MODE)


def declare_service(
    resource_name: str, opts: pulumi.ResourceOptions, **spec: Any
) -> tuple[docker.Service, pulumi.Output[str]]:
    """The Swarm service, and its revision: a digest of every input it is declared with. It changes
    exactly when `pulumi up` updates the service: a new image, limit, label or placement, and a new
    nginx.conf, certificate, key, redis.conf or password, which are new Swarm configs and secrets with
    new IDs (every input of theirs is ForceNew: components/swarm/secrets.py). The swarm health hook is
    triggered by the revisions, as the single-host one is by the replaced containers' IDs."""
    return docker.Service(resource_name, opts=opts, **spec), spec_revision(spec)


def spec_revision(spec: dict[str, Any]) -> pulumi.Output[str]:
    # Args classes (ServiceTaskSpecArgs, ...) keep their fields in __dict__; Output.from_input resolves
    # the outputs nested in them (IDs, the API's image digest). Unknown during a preview while any
    # input is, so the hook shows as re-running whenever the service may change. Secret when the spec
    # holds one (the API's environment), as the rollout fingerprint is.
    return pulumi.Output.from_input(spec).apply(
        lambda resolved: hashlib.sha256(json.dumps(resolved, sort_keys=True, default=vars).encode()).hexdigest()
    )
