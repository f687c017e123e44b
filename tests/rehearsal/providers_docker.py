"""pulumi-docker's bridged resources: the Terraform docker provider through the bridge.

Sources: kreuzwerker/terraform-provider-docker v4.5.0 (the `upstream` submodule of
pulumi/pulumi-docker v5.1.0), files under internal/provider/; the bridge's rules from
pulumi/pulumi-terraform-bridge pkg/tfbridge/provider.go; pulumi-docker provider/resources.go.
"""

from __future__ import annotations

import base64
import contextlib
import io
import secrets
import tarfile
import time
from collections.abc import Mapping
from typing import Any

import docker.errors
from docker.types import LogConfig, Mount, Ulimit
from engine_base import Change, Diff, InitError, Inputs, Provider, Refused, RehearsalError, Spec
from engine_base import go_duration_ns as _go_duration_ns
from engine_base import to_int as _int

# resource_docker_container_funcs.go: errContainerFailedToBeInHealthyState, the whole message of a
# failed `wait` (the engine prefixes the resource, as Pulumi does).
HEALTHY_STATE_ERROR = "container failed to be in healthy state"


class NetworkProvider(Provider):
    # terraform-provider-docker resource_docker_network.go: every argument is ForceNew.
    token = "docker:index/network:Network"
    spec = Spec({"name", "driver", "labels", "options"}, {"labels": Spec({"label", "value"})})
    autonamed = True

    def create(self, name: str, inputs: Inputs) -> Change:
        net_name = inputs.get("name") or f"{name}-{secrets.token_hex(4)[:7]}"
        labels = {item["label"]: item["value"] for item in inputs.get("labels") or []}
        # resource_docker_network_funcs.go: `options` go to NetworkCreate's Options as given (e.g. an
        # overlay's "encrypted").
        net = self.r.docker.networks.create(
            net_name, driver=inputs.get("driver") or "bridge", labels=labels, options=inputs.get("options") or None
        )
        return Change(net.id, {**inputs, "name": net_name, "driver": inputs.get("driver") or "bridge"})

    def delete(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.r.docker.networks.get(entry["id"]).remove()


class VolumeProvider(Provider):
    # resource_docker_volume.go: every argument is ForceNew.
    token = "docker:index/volume:Volume"
    spec = Spec({"name", "labels"}, {"labels": Spec({"label", "value"})})
    autonamed = True

    def create(self, name: str, inputs: Inputs) -> Change:
        vol_name = inputs.get("name") or f"{name}-{secrets.token_hex(4)[:7]}"
        labels = {item["label"]: item["value"] for item in inputs.get("labels") or []}
        # Like the provider (and `docker volume create`), an existing volume of that name is adopted.
        volume = self.r.docker.volumes.create(name=vol_name, labels=labels)
        return Change(volume.name, {**inputs, "name": vol_name, "driver": volume.attrs.get("Driver", "local")})

    def delete(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.r.docker.volumes.get(entry["id"]).remove()


class RemoteImageProvider(Provider):
    # resource_docker_image.go (docker_image): `name` is ForceNew, `keep_locally` is not;
    # pulumi-terraform-bridge info/autonaming.go leaves it out of auto-naming, so its replacement is
    # create-before-delete.
    token = "docker:index/remoteImage:RemoteImage"
    spec = Spec({"name", "keepLocally"})
    updatable = frozenset({"keepLocally"})

    def check(self, where: str, inputs: Inputs) -> Inputs:
        super().check(where, inputs)
        if inputs.get("keepLocally") is not True:
            raise Refused(f"{where}: input 'keepLocally' must be true (the rehearsal never removes shared images)")
        return inputs

    def create(self, name: str, inputs: Inputs) -> Change:
        ref = inputs["name"]
        try:
            image = self.r.docker.images.get(ref)
        except docker.errors.ImageNotFound:
            raise RehearsalError(
                f"image {ref!r} is not present on this engine and the rehearsal never pulls; build or tag it first"
            ) from None
        digests = image.attrs.get("RepoDigests") or []
        outputs = {**inputs, "imageId": image.id, "repoDigest": digests[0] if digests else ""}
        return Change(f"{image.id}{ref}", outputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass  # keepLocally: the provider leaves the image in place.


class ContainerProvider(Provider):
    token = "docker:index/container:Container"
    spec = Spec(
        {
            "name",
            "image",
            "envs",
            "command",
            "labels",
            "healthcheck",
            "restart",
            "memory",
            "memorySwap",
            "shmSize",
            "stopSignal",
            "stopTimeout",
            "destroyGraceSeconds",
            "wait",
            "waitTimeout",
            "mustRun",
            "mounts",
            "volumes",
            "networksAdvanced",
            "ports",
            "uploads",
            "logDriver",
            "logOpts",
            # Issue 10 (container hardening); see _hardening_host_config.
            "securityOpts",
            "capabilities",
            "cpus",
            "ulimits",
            "readOnly",
            "tmpfs",
            "user",
            "start",
            "networkMode",
            # Issue 13 (the ACME sidecar joins nginx's PID namespace).
            "pidMode",
        },
        {
            "labels": Spec({"label", "value"}),
            "healthcheck": Spec({"tests", "interval", "timeout", "startPeriod", "retries"}),
            "mounts": Spec({"target", "type", "source", "readOnly"}),
            "volumes": Spec({"hostPath", "volumeName", "containerPath", "readOnly"}),
            "networksAdvanced": Spec({"name", "aliases"}),
            "ports": Spec({"internal", "external", "ip", "protocol"}),
            "uploads": Spec({"file", "content", "contentBase64", "executable", "permissions", "owner", "group"}),
            "capabilities": Spec({"adds", "drops"}),
            "ulimits": Spec({"name", "soft", "hard"}),
        },
    )
    # resource_docker_container.go: of the implemented inputs these are not ForceNew; all others are.
    # resource_docker_container.go: `tmpfs` and `start` have no ForceNew either (and Update applies
    # neither: they only change the state), unlike read_only, user, capabilities, security_opts,
    # cpus, ulimit, network_mode and pid_mode (line 974 in v4.5.0), which are ForceNew.
    updatable = frozenset(
        {
            "restart",
            "memory",
            "memorySwap",
            "destroyGraceSeconds",
            "wait",
            "waitTimeout",
            "mustRun",
            "healthcheck",
            "tmpfs",
            "start",
        }
    )
    autonamed = True
    # pulumi-docker provider/resources.go: docker_container is registered with DeleteBeforeReplace: true.
    schema_delete_before_replace = True

    def check(self, where: str, inputs: Inputs) -> Inputs:
        super().check(where, inputs)
        for index, mount in enumerate(inputs.get("mounts") or []):
            if mount.get("type") not in ("volume", "bind"):
                raise Refused(f"{where}: input 'mounts[{index}].type' value {mount.get('type')!r} is not implemented")
        for index, upload in enumerate(inputs.get("uploads") or []):
            if ("content" in upload) == ("contentBase64" in upload):
                raise Refused(f"{where}: input 'uploads[{index}]' needs exactly one of content / contentBase64")
        for index, upload in enumerate(inputs.get("uploads") or []):
            # owner/group: only the pulumi-docker 5.2.0 schema documents them ("numeric IDs can be used
            # directly"; names resolve in the host's user database); the upstream source read here
            # (v4.5.0) predates them, so only numeric IDs are implemented.
            for key in ("owner", "group"):
                if upload.get(key) is not None and not str(upload[key]).isdigit():
                    raise Refused(f"{where}: input 'uploads[{index}].{key}' other than a numeric ID is not implemented")
        for index, volume in enumerate(inputs.get("volumes") or []):
            # resource_docker_container_structures.go volumeSetToDockerVolumes: a path is required
            # (from_container is not implemented here).
            if not volume.get("containerPath"):
                raise Refused(f"{where}: input 'volumes[{index}].containerPath' is required by the rehearsal engine")
        return inputs

    @staticmethod
    def _healthcheck(spec: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not spec:
            return None
        return {
            "test": list(spec["tests"]),
            "interval": _go_duration_ns(spec.get("interval") or "0s"),
            "timeout": _go_duration_ns(spec.get("timeout") or "0s"),
            "start_period": _go_duration_ns(spec.get("startPeriod") or "0s"),
            "retries": _int(spec.get("retries")),
        }

    @staticmethod
    def _upload_tar(upload: Mapping[str, Any]) -> bytes:
        # resource_docker_container_funcs.go Create: one tar per upload, copied to "/"; mode from
        # `permissions` (octal), else 0744 when executable, else 0644. Owner/group: numeric IDs in
        # the tar header (see check).
        content = upload.get("content")
        data = content.encode() if content is not None else base64.b64decode(upload["contentBase64"])
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name=upload["file"].lstrip("/"))
            info.size = len(data)
            if upload.get("permissions"):
                info.mode = int(str(upload["permissions"]), 8)
            else:
                info.mode = 0o744 if upload.get("executable") else 0o644
            info.uid = int(upload.get("owner") or 0)
            info.gid = int(upload.get("group") or 0)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    @staticmethod
    def _mb(value: Any) -> int | None:
        """memory / memory_swap / shm_size are MB (x 1024 x 1024); memory_swap -1 passes as is."""
        if value is None or _int(value) == 0:
            return None
        number = _int(value)
        return number if number < 0 else number * 1024 * 1024

    @staticmethod
    def _binds(inputs: Inputs) -> tuple[list[str], list[str]]:
        # volumeSetToDockerVolumes: host_path (else volume_name) becomes a bind
        # "<source>:<container_path>:rw|ro"; the container path is also declared as a volume.
        binds, paths = [], []
        for volume in inputs.get("volumes") or []:
            paths.append(volume["containerPath"])
            source = volume.get("hostPath") or volume.get("volumeName")
            if source:
                binds.append(f"{source}:{volume['containerPath']}:{'ro' if volume.get('readOnly') else 'rw'}")
        return binds, paths

    @staticmethod
    def _hardening_host_config(inputs: Inputs) -> dict[str, Any]:
        """resource_docker_container_funcs.go Create: ReadonlyRootfs from read_only, Tmpfs from the
        tmpfs map as given, CapAdd/CapDrop from the capabilities block's add/drop as given,
        SecurityOpt from security_opts, NanoCPUs = opts.ParseCPUs(cpus) (a decimal number of
        CPUs x 1e9), Ulimits from each ulimit's name/soft/hard, NetworkMode from network_mode,
        PidMode from pid_mode as given ("container:<id>" joins that container's namespace)."""
        caps = inputs.get("capabilities") or {}
        cpus = inputs.get("cpus")
        return {
            "read_only": bool(inputs.get("readOnly")),
            "tmpfs": dict(inputs.get("tmpfs") or {}) or None,
            "cap_add": list(caps.get("adds") or []) or None,
            "cap_drop": list(caps.get("drops") or []) or None,
            "security_opt": list(inputs.get("securityOpts") or []) or None,
            "pid_mode": inputs.get("pidMode") or None,
            "nano_cpus": round(float(cpus) * 1e9) if cpus else None,
            "ulimits": [
                Ulimit(name=u["name"], soft=_int(u["soft"]), hard=_int(u["hard"])) for u in inputs.get("ulimits") or []
            ]
            or None,
        }

    def create(self, name: str, inputs: Inputs) -> Change:
        api = self.r.docker.api
        cname = inputs.get("name") or f"{name}-{secrets.token_hex(4)[:7]}"
        bindings: dict[str, list[tuple[str, int | None]]] = {}
        exposed = []
        for port in inputs.get("ports") or []:
            key = f"{_int(port['internal'])}/{port.get('protocol') or 'tcp'}"
            exposed.append((_int(port["internal"]), port.get("protocol") or "tcp"))
            external = port.get("external")
            bindings.setdefault(key, []).append((port.get("ip") or "0.0.0.0", _int(external) if external else None))
        mounts = [
            Mount(target=m["target"], source=m["source"], type=m["type"], read_only=bool(m.get("readOnly")))
            for m in inputs.get("mounts") or []
        ]
        binds, volume_paths = self._binds(inputs)
        networks = inputs.get("networksAdvanced") or []
        host_config = api.create_host_config(
            restart_policy={"Name": inputs.get("restart") or "no", "MaximumRetryCount": 0},
            mem_limit=self._mb(inputs.get("memory")),
            memswap_limit=self._mb(inputs.get("memorySwap")),
            shm_size=self._mb(inputs.get("shmSize")),
            log_config=LogConfig(type=inputs.get("logDriver") or "json-file", config=inputs.get("logOpts") or {}),
            mounts=mounts or None,
            binds=binds or None,
            port_bindings={k: v if len(v) > 1 else v[0] for k, v in bindings.items()} or None,
            network_mode=networks[0]["name"] if networks else inputs.get("networkMode"),
            init=False,
            **self._hardening_host_config(inputs),
        )
        networking = None
        if networks:
            first = networks[0]
            networking = api.create_networking_config(
                {first["name"]: api.create_endpoint_config(aliases=list(first.get("aliases") or []) or None)}
            )
        created = api.create_container(
            inputs["image"],
            command=inputs.get("command"),
            environment=list(inputs.get("envs") or []) or None,
            labels={item["label"]: item["value"] for item in inputs.get("labels") or []},
            name=cname,
            host_config=host_config,
            networking_config=networking,
            healthcheck=self._healthcheck(inputs.get("healthcheck")),
            stop_signal=inputs.get("stopSignal"),
            stop_timeout=_int(inputs["stopTimeout"]) if inputs.get("stopTimeout") is not None else None,
            ports=exposed or None,
            volumes=volume_paths or None,
            user=inputs.get("user"),
        )
        cid = created["Id"]
        outputs = {**inputs, "name": cname}
        # From here the container exists: a failure is a partial failure (recorded with an init error).
        try:
            for extra in networks[1:]:
                api.connect_container_to_network(cid, extra["name"], aliases=list(extra.get("aliases") or []) or None)
            for upload in inputs.get("uploads") or []:
                # The daemon refuses this for a read-only root filesystem ("container rootfs is
                # marked read-only"), as it does for the provider: the archive goes to "/".
                api.put_archive(cid, "/", self._upload_tar(upload))
            # Create starts the container (and waits for it) only when `start` is true (the default).
            if inputs.get("start") is False:
                return Change(cid, outputs)
            api.start(cid)
        except docker.errors.APIError as exc:
            raise InitError(Change(cid, outputs), f"container {cname}: {exc.explanation or exc}") from exc
        if inputs.get("wait"):
            # The schema default of wait_timeout is 60 seconds.
            reason = self._wait_healthy(cid, cname, _int(inputs.get("waitTimeout"), 60))
            if reason:
                raise InitError(Change(cid, outputs), reason)
        # Create ends with Read, which never removes a container that stopped (v4.x): no check here.
        return Change(cid, outputs)

    def _wait_healthy(self, cid: str, cname: str, timeout: int) -> str | None:
        """resource_docker_container_funcs.go Create, `wait`: inspect once a second until the health
        status is `healthy`; nothing else ends it early (not `unhealthy`, not an exited container)
        until `wait_timeout` seconds have passed. A container without a health check fails at once."""
        api = self.r.docker.api
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while True:
            state = api.inspect_container(cid)["State"]
            last = state
            health = state.get("Health")
            if not health:
                return "wait is set, but the container has no health check defined"
            if health.get("Status") == "healthy":
                self.r.log(f"container {cname} healthy")
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(1.0, remaining))
        # The error says nothing more; the rehearsal's own log keeps what it saw, for the test reader.
        probes = (last.get("Health") or {}).get("Log") or []
        probe = (probes[-1].get("Output") or "").strip()[:200] if probes else "no probe ran"
        self.r.log(
            f"container {cname} not healthy after {timeout}s: status {last.get('Status')}, "
            f"health {(last.get('Health') or {}).get('Status')}, last probe {probe!r}"
        )
        return HEALTHY_STATE_ERROR

    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs, diff: Diff) -> Change:
        """resource_docker_container_funcs.go Update: only restart / memory / memory_swap (and other
        resource limits) reach Docker, in one ContainerUpdate; must_run false->true starts it.
        Anything else in place (healthcheck, wait, wait_timeout, destroy_grace_seconds) only changes
        the state. An empty update (unchanged inputs after an init error) calls nothing: the bridge
        returns the old state when the diff is empty (pulumi-terraform-bridge provider.go Update)."""
        api = self.r.docker.api
        if old["inputs"].get("mustRun") is False and inputs.get("mustRun") is not False:
            api.start(old["id"])
        if diff.changed & {"restart", "memory", "memorySwap"}:
            kwargs: dict[str, Any] = {
                "restart_policy": {"Name": inputs.get("restart") or "no", "MaximumRetryCount": 0},
                "mem_limit": self._mb(inputs.get("memory")) or 0,
            }
            swap = self._mb(inputs.get("memorySwap"))
            if swap is not None:
                kwargs["memswap_limit"] = swap
            try:
                api.update_container(old["id"], **kwargs)
            except docker.errors.APIError as exc:
                raise RehearsalError(f"Unable to update a container: {exc.explanation or exc}") from exc
        return Change(old["id"], {**old["outputs"], **inputs, "name": old["outputs"]["name"]})

    def delete(self, entry: Mapping[str, Any]) -> None:
        """resource_docker_container_funcs.go Delete: stop with destroy_grace_seconds (0 when unset),
        then a forced remove with its anonymous volumes (remove_volumes defaults to true)."""
        api = self.r.docker.api
        grace = _int(entry["inputs"].get("destroyGraceSeconds"))
        with contextlib.suppress(docker.errors.NotFound):
            api.stop(entry["id"], timeout=grace)
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_container(entry["id"], force=True, v=True)
