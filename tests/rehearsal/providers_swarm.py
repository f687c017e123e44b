"""pulumi-docker's Swarm resources: Service, Secret, ServiceConfig (the Terraform docker provider
through the bridge).

Sources: kreuzwerker/terraform-provider-docker v4.5.0, internal/provider/ (shortened to TF):
resource_docker_service.go (schema: what is ForceNew, the defaults), resource_docker_service_funcs.go
(create/update/delete, the converge waits), resource_docker_service_structures.go (how inputs map
to the Swarm API's ServiceSpec), resource_docker_secret.go, resource_docker_config.go; the Docker
client's ServiceCreate (moby client/service_create.go: QueryRegistry pins the image digest). Each
rule is cited again beside its code; README.md beside this file has the rows.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import time
from collections.abc import Mapping
from typing import Any

import docker.errors
from engine_base import Change, Diff, Inputs, Provider, RehearsalError, Spec, changed_keys, changed_paths
from engine_base import go_duration_ns as _ns

_LABELS = Spec({"label", "value"})

# --- Secret and ServiceConfig ---------------------------------------------------------------------


class SecretProvider(Provider):
    # TF resource_docker_secret.go: `name`, `data`, `labels` all ForceNew; `name` Required, so the
    # bridge auto-names it (and a program-set name makes a replacement delete-first).
    token = "docker:index/secret:Secret"
    spec = Spec({"name", "data", "labels"}, {"labels": _LABELS})
    autonamed = True

    def create(self, name: str, inputs: Inputs) -> Change:
        secret_name = inputs.get("name") or f"{name}-{secrets.token_hex(4)[:7]}"
        # resourceDockerSecretCreate: data is decoded with base64.StdEncoding before SecretCreate.
        data = base64.b64decode(inputs["data"])
        labels = {item["label"]: item["value"] for item in inputs.get("labels") or []}
        created = self.r.docker.api.create_secret(secret_name, data, labels=labels)
        return Change(created["ID"], {**inputs, "name": secret_name})

    def delete(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.r.docker.api.remove_secret(entry["id"])


class ServiceConfigProvider(Provider):
    # TF resource_docker_config.go: `name`, `data`/`data_raw` (exactly one), `labels` all ForceNew;
    # getConfigDataBytes takes data_raw as is, else base64-decodes data.
    token = "docker:index/serviceConfig:ServiceConfig"
    spec = Spec({"name", "data", "dataRaw", "labels"}, {"labels": _LABELS})
    autonamed = True

    def create(self, name: str, inputs: Inputs) -> Change:
        config_name = inputs.get("name") or f"{name}-{secrets.token_hex(4)[:7]}"
        raw = inputs.get("dataRaw")
        data = raw.encode() if raw is not None else base64.b64decode(inputs["data"])
        labels = {item["label"]: item["value"] for item in inputs.get("labels") or []}
        created = self.r.docker.api.create_config(config_name, data, labels=labels)
        return Change(created["ID"], {**inputs, "name": config_name})

    def delete(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.r.docker.api.remove_config(entry["id"])


# --- Service ----------------------------------------------------------------------------------------

_STEP = Spec({"parallelism", "delay", "failureAction", "monitor", "maxFailureRatio", "order"})
_FILE_REF = {"fileName", "fileUid", "fileGid", "fileMode"}
SERVICE_SPEC = Spec(
    {"name", "labels", "mode", "taskSpec", "updateConfig", "rollbackConfig", "endpointSpec", "convergeConfig"},
    {
        "labels": _LABELS,
        "mode": Spec({"replicated", "global"}, {"replicated": Spec({"replicas"})}),
        "updateConfig": _STEP,
        "rollbackConfig": _STEP,
        "convergeConfig": Spec({"delay", "timeout"}),
        "endpointSpec": Spec(
            {"mode", "ports"}, {"ports": Spec({"targetPort", "publishedPort", "publishMode", "protocol", "name"})}
        ),
        "taskSpec": Spec(
            {"containerSpec", "resources", "restartPolicy", "logDriver", "networksAdvanceds", "placement"},
            {
                "containerSpec": Spec(
                    {
                        "image",
                        "commands",
                        "args",
                        "env",
                        "user",
                        "readOnly",
                        "capAdds",
                        "capDrops",
                        "healthcheck",
                        "stopSignal",
                        "stopGracePeriod",
                        "mounts",
                        "secrets",
                        "configs",
                        "labels",
                    },
                    {
                        "labels": _LABELS,
                        "healthcheck": Spec({"tests", "interval", "timeout", "startPeriod", "retries"}),
                        "mounts": Spec(
                            {"target", "type", "source", "readOnly", "tmpfsOptions"},
                            {"tmpfsOptions": Spec({"sizeBytes", "mode"})},
                        ),
                        "secrets": Spec({"secretId", "secretName", *_FILE_REF}),
                        "configs": Spec({"configId", "configName", *_FILE_REF}),
                    },
                ),
                "resources": Spec({"limits"}, {"limits": Spec({"nanoCpus", "memoryBytes"})}),
                "restartPolicy": Spec({"condition", "delay", "maxAttempts", "window"}),
                "logDriver": Spec({"name", "options"}),
                "networksAdvanceds": Spec({"id", "aliases"}),
                "placement": Spec({"constraints", "prefs", "maxReplicas"}),
            },
        ),
    },
)

# TF resource_docker_service.go schema: the ForceNew inputs (and those nested in a ForceNew block's
# own ForceNew fields). Every other change is an update in place (resourceDockerServiceUpdate).
SERVICE_FORCE_NEW = (
    "name",
    "auth",
    "taskSpec.containerSpec.hosts",
    "taskSpec.containerSpec.sysctl",
    "taskSpec.networksAdvanceds",
)
# `mode` is ForceNew as a block: adding, removing or switching replicated/global replaces the service;
# `replicas` inside it has no ForceNew of its own (an update).
MODE_KINDS = ("replicated", "global")

# resource_docker_service.go defaults of update_config / rollback_config when the block is given.
_STEP_DEFAULTS = {
    "parallelism": 1,
    "delay": "0s",
    "failureAction": "pause",
    "monitor": "5s",
    "maxFailureRatio": "0.0",
    "order": "stop-first",
}

# resource_docker_service_funcs.go numberedStates / terminalState: task states in lifecycle order.
_TASK_STATES = (
    "new",
    "allocated",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
    "complete",
    "shutdown",
    "failed",
    "rejected",
    "remove",
    "orphaned",
)
_ORDER = {state: i + 1 for i, state in enumerate(_TASK_STATES)}


def _duration(text: str | None) -> int | None:
    return None if text is None else _ns(text)


def _step_config(raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # createUpdateOrRollbackConfig: every field with its schema default.
    if raw is None:
        return None
    merged = {**_STEP_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
    return {
        "Parallelism": int(merged["parallelism"]),
        "Delay": _ns(merged["delay"]),
        "FailureAction": merged["failureAction"],
        "Monitor": _ns(merged["monitor"]),
        "MaxFailureRatio": float(merged["maxFailureRatio"]),
        "Order": merged["order"],
    }


def _file_target(ref: Mapping[str, Any]) -> dict[str, Any]:
    # Secrets and configs: file_uid/file_gid default "0", file_mode 0o444 (schema defaults).
    return {
        "Name": ref["fileName"],
        "UID": str(ref.get("fileUid") or "0"),
        "GID": str(ref.get("fileGid") or "0"),
        "Mode": int(ref.get("fileMode") if ref.get("fileMode") is not None else 0o444),
    }


def _tagged(image: str) -> str:
    """moby client/service_create.go imageWithTagString: a reference without tag or digest gets
    `:latest` (docker/distribution reference.TagNameOnly)."""
    last = image.rsplit("/", 1)[-1]
    return image if "@" in image or ":" in last else f"{image}:latest"


def service_spec(inputs: Inputs) -> dict[str, Any]:
    """TF resource_docker_service_structures.go createServiceSpec and its helpers, for the inputs
    in SERVICE_SPEC."""
    task = inputs["taskSpec"]
    container = task["containerSpec"]
    spec_container: dict[str, Any] = {"Image": _tagged(container["image"])}
    if container.get("commands"):
        spec_container["Command"] = list(container["commands"])
    if container.get("args"):
        spec_container["Args"] = list(container["args"])
    if container.get("env"):
        # mapTypeMapValsToStringSlice: KEY=value.
        spec_container["Env"] = [f"{k}={v}" for k, v in container["env"].items()]
    if container.get("labels"):
        # createContainerSpec: containerSpec.Labels = labelSetToMap(...) (the restore's label on the API).
        spec_container["Labels"] = {item["label"]: item["value"] for item in container["labels"]}
    for key, target in (("user", "User"), ("stopSignal", "StopSignal")):
        if container.get(key):
            spec_container[target] = container[key]
    if container.get("readOnly"):
        spec_container["ReadOnly"] = True
    if container.get("capAdds"):
        spec_container["CapabilityAdd"] = list(container["capAdds"])
    if container.get("capDrops"):
        spec_container["CapabilityDrop"] = list(container["capDrops"])
    if container.get("stopGracePeriod"):
        spec_container["StopGracePeriod"] = _ns(container["stopGracePeriod"])
    health = container.get("healthcheck")
    if health is not None:
        spec_container["Healthcheck"] = {
            "Test": list(health.get("tests") or []),
            "Interval": _ns(health.get("interval") or "0s"),
            "Timeout": _ns(health.get("timeout") or "0s"),
            "StartPeriod": _ns(health.get("startPeriod") or "0s"),
            "Retries": int(health.get("retries") or 0),
        }
    mounts = []
    for mount in container.get("mounts") or []:
        item: dict[str, Any] = {"Target": mount["target"], "Type": mount.get("type") or "volume"}
        if mount.get("source"):
            item["Source"] = mount["source"]
        if mount.get("readOnly"):
            item["ReadOnly"] = True
        tmpfs = mount.get("tmpfsOptions")
        if tmpfs:
            item["TmpfsOptions"] = {
                k: int(tmpfs[src]) for src, k in (("sizeBytes", "SizeBytes"), ("mode", "Mode")) if tmpfs.get(src)
            }
        mounts.append(item)
    if mounts:
        spec_container["Mounts"] = mounts
    if container.get("secrets"):
        spec_container["Secrets"] = [
            {"SecretID": s["secretId"], "SecretName": s.get("secretName") or "", "File": _file_target(s)}
            for s in container["secrets"]
        ]
    if container.get("configs"):
        spec_container["Configs"] = [
            {"ConfigID": c["configId"], "ConfigName": c.get("configName") or "", "File": _file_target(c)}
            for c in container["configs"]
        ]
    template: dict[str, Any] = {"ContainerSpec": spec_container}
    limits = (task.get("resources") or {}).get("limits")
    if limits:
        template["Resources"] = {
            "Limits": {"NanoCPUs": int(limits.get("nanoCpus") or 0), "MemoryBytes": int(limits.get("memoryBytes") or 0)}
        }
    restart = task.get("restartPolicy")
    if restart:
        policy: dict[str, Any] = {"Condition": restart.get("condition") or "any"}
        for key, target in (("delay", "Delay"), ("window", "Window")):
            if restart.get(key):
                policy[target] = _ns(restart[key])
        if restart.get("maxAttempts") is not None:
            policy["MaxAttempts"] = int(restart["maxAttempts"])
        template["RestartPolicy"] = policy
    log_driver = task.get("logDriver")
    if log_driver:
        template["LogDriver"] = {"Name": log_driver["name"], "Options": dict(log_driver.get("options") or {})}
    networks = task.get("networksAdvanceds") or []
    if networks:
        # createServiceAdvancedNetworks: `id`, else the deprecated `name`, is the Target.
        template["Networks"] = [{"Target": n["id"], "Aliases": list(n.get("aliases") or [])} for n in networks]
    placement = task.get("placement")
    if placement:
        # createPlacement; stringSetToPlacementPrefs: each pref is a SpreadDescriptor as given.
        template["Placement"] = {
            "Constraints": list(placement.get("constraints") or []),
            "Preferences": [{"Spread": {"SpreadDescriptor": p}} for p in placement.get("prefs") or []],
            "MaxReplicas": int(placement.get("maxReplicas") or 0),
        }
    spec: dict[str, Any] = {
        "Name": inputs["name"],
        "Labels": {item["label"]: item["value"] for item in inputs.get("labels") or []},
        "TaskTemplate": template,
    }
    mode = inputs.get("mode") or {}
    if mode.get("global"):
        spec["Mode"] = {"Global": {}}
    else:
        # createServiceMode: replicated with `replicas` (schema default 1).
        spec["Mode"] = {"Replicated": {"Replicas": int((mode.get("replicated") or {}).get("replicas", 1))}}
    for key, target in (("updateConfig", "UpdateConfig"), ("rollbackConfig", "RollbackConfig")):
        config = _step_config(inputs.get(key))
        if config is not None:
            spec[target] = config
    endpoint = inputs.get("endpointSpec")
    if endpoint:
        spec["EndpointSpec"] = {
            **({"Mode": endpoint["mode"]} if endpoint.get("mode") else {}),
            "Ports": [
                {
                    "Protocol": p.get("protocol") or "tcp",
                    "TargetPort": int(p["targetPort"]),
                    **({"PublishedPort": int(p["publishedPort"])} if p.get("publishedPort") else {}),
                    "PublishMode": p.get("publishMode") or "ingress",
                    **({"Name": p["name"]} if p.get("name") else {}),
                }
                for p in endpoint.get("ports") or []
            ],
        }
    return spec


class ServiceProvider(Provider):
    token = "docker:index/service:Service"
    spec = SERVICE_SPEC
    autonamed = True

    def check(self, where: str, inputs: Inputs) -> Inputs:
        super().check(where, inputs)
        if (inputs.get("mode") or {}).get("global") and inputs.get("convergeConfig"):
            # resource_docker_service.go: converge_config ConflictsWith mode.0.global.
            raise RehearsalError(f'{where}: "converge_config": conflicts with mode.0.global')
        return inputs

    def diff(self, old: Mapping[str, Any], inputs: Inputs) -> Diff:
        before = old["inputs"]
        changed = changed_keys(before, inputs)
        paths = changed_paths(before, inputs)
        replace = {p for p in paths if any(p == f or p.startswith((f"{f}.", f"{f}[")) for f in SERVICE_FORCE_NEW)}
        old_kinds = {k for k in MODE_KINDS if (before.get("mode") or {}).get(k)}
        new_kinds = {k for k in MODE_KINDS if (inputs.get("mode") or {}).get(k)}
        if old_kinds != new_kinds:
            replace.add("mode")
        dbr = bool(replace) and bool(inputs.get("name"))  # bridge nameRequiresDeleteBeforeReplace
        return Diff(changed, paths, replace, dbr)

    # -- create ------------------------------------------------------------------------------------
    def create(self, name: str, inputs: Inputs) -> Change:
        api = self.r.docker.api
        spec = service_spec(inputs)
        # resourceDockerServiceCreate sets QueryRegistry: the client pins the image to the digest the
        # registry reports (and its platforms); a registry that does not answer leaves it as is
        # (moby client/service_create.go resolveContainerSpecImage, digestWarning).
        image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
        if "@" not in image:
            with contextlib.suppress(docker.errors.APIError):
                described = api.inspect_distribution(image)
                spec["TaskTemplate"]["ContainerSpec"]["Image"] = f"{image}@{described['Descriptor']['digest']}"
        created = api._result(api._post_json(api._url("/services/create"), data=spec), True)
        service_id = created["ID"]
        converge = inputs.get("convergeConfig")
        if converge:
            try:
                self._wait(service_id, converge, updating=False)
            except RehearsalError:
                # resourceDockerServiceCreate: a service that does not converge is deleted again.
                self._remove(service_id, inputs)
                raise
        return Change(service_id, dict(inputs))

    # -- update ------------------------------------------------------------------------------------
    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs, diff: Diff) -> Change:
        # resourceDockerServiceUpdate: ServiceInspect for the version, then ServiceUpdate with the whole
        # spec built from the new inputs (no QueryRegistry on update), then the converge wait.
        api = self.r.docker.api
        current = api.inspect_service(old["id"])
        version = current["Version"]["Index"]
        url = api._url("/services/{0}/update", old["id"])
        api._result(api._post_json(url, data=service_spec(inputs), params={"version": version}), True)
        converge = inputs.get("convergeConfig")
        if converge:
            self._wait(old["id"], converge, updating=True)
        return Change(old["id"], dict(inputs))

    # -- the converge wait -------------------------------------------------------------------------
    def _wait(self, service_id: str, converge: Mapping[str, Any], *, updating: bool) -> None:
        """retry.StateChangeConf with the refresh functions of resource_docker_service_funcs.go:
        first check after `delay` (update: a fixed 7 s), then at least every 5 s (MinTimeout), until
        `timeout` (default 3m): DidNotConvergeError."""
        timeout = _ns(converge.get("timeout") or "3m") / 1e9
        delay = 7.0 if updating else _ns(converge.get("delay") or "7s") / 1e9
        started = time.monotonic()
        time.sleep(min(delay, timeout))
        while True:
            if self._converged(service_id, updating):
                return
            if time.monotonic() - started >= timeout:
                raise RehearsalError(f"Service with ID ({service_id}) did not converge after {timeout:.0f}s")
            time.sleep(5)

    def _converged(self, service_id: str, updating: bool) -> bool:
        api = self.r.docker.api
        service = api.inspect_service(service_id)
        rollback = False
        status = service.get("UpdateStatus") or {}
        if updating and status:
            # resourceDockerServiceUpdateRefreshFunc: the update's own state decides first.
            state, message = status.get("State", ""), status.get("Message", "")
            if state == "completed":
                return True
            if state == "rollback_started":
                rollback = True
            elif state == "rollback_completed":
                raise RehearsalError(f"service rollback completed: {message}")
            elif state == "paused":
                raise RehearsalError(f"service update paused: {message}")
            elif state == "rollback_paused":
                raise RehearsalError(f"service rollback paused: {message}")
        replicas = ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        if replicas is None:
            raise RehearsalError("no replica count")
        tasks = api.tasks(filters={"service": service_id, "desired-state": "running"})
        active = {n["ID"] for n in api.nodes() if n["Status"]["State"] != "down"}
        running = sum(
            1
            for task in _tasks_by_slot(tasks, active).values()
            if _ORDER.get(task["DesiredState"], 0) <= _ORDER["running"] and task["Status"]["State"] == "running"
        )
        done = running == replicas
        if done and rollback:
            raise RehearsalError(f"service rollback completed: {status.get('Message', '')}")
        return done

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, entry: Mapping[str, Any]) -> None:
        self._remove(entry["id"], entry["inputs"])

    def _remove(self, service_id: str, inputs: Mapping[str, Any]) -> None:
        """deleteService: with a stop_grace_period other than 0s, the task containers known to this
        engine are collected first, then waited for (at most the grace period) and force-removed after
        ServiceRemove; containers on other nodes are unknown here ("No such container" is ignored)."""
        api = self.r.docker.api
        grace = ((inputs.get("taskSpec") or {}).get("containerSpec") or {}).get("stopGracePeriod")
        containers: list[str] = []
        if grace and grace != "0s":
            name = inputs.get("name") or service_id
            for task in api.tasks(filters={"service": name}):
                status = task.get("Status") or {}
                cid = (status.get("ContainerStatus") or {}).get("ContainerID", "")
                if cid.strip() and status.get("State") != "shutdown":
                    containers.append(cid)
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_service(service_id)
        for cid in containers:
            deadline = time.monotonic() + _ns(grace) / 1e9
            while time.monotonic() < deadline:
                try:
                    api.inspect_container(cid)
                except docker.errors.NotFound:
                    break
                time.sleep(0.5)
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                api.remove_container(cid, v=True, force=True)


def _tasks_by_slot(tasks: list[dict[str, Any]], active: set[str]) -> dict[int, dict[str, Any]]:
    """replicatedConsoleLogUpdater.tasksBySlot: per slot the task with the lowest desired state (ties:
    the lowest observed state), only tasks on active nodes."""
    by_slot: dict[int, dict[str, Any]] = {}
    for task in tasks:
        desired, observed = _ORDER.get(task.get("DesiredState", ""), 0), _ORDER.get(task["Status"]["State"], 0)
        if not desired or not observed:
            continue
        slot = task.get("Slot", 0)
        existing = by_slot.get(slot)
        if existing is not None:
            have_desired = _ORDER[existing["DesiredState"]]
            if have_desired < desired:
                continue
            if have_desired == desired and _ORDER[existing["Status"]["State"]] <= observed:
                continue
        if task.get("NodeID") and task["NodeID"] not in active:
            continue
        by_slot[slot] = task
    return by_slot
