"""Runs the unmodified Pulumi program under Pulumi's mock runtime and records what it declares.

The recording monitor keeps, per resource, what the engine would see: inputs (with the
paths that are secret), parent, dependencies and resource options, so tests can check
wiring (who waits for whom), protection and secrecy, not just property values.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import runpy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT_DIR = Path(__file__).resolve().parent.parent
MAIN = PROJECT_DIR / "__main__.py"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    # True when the program set delete_before_replace itself; otherwise the engine follows
    # the provider (pulumi-docker: delete-first for every container).
    delete_before_replace_defined: bool
    replace_on_changes: list[str]
    additional_secret_outputs: list[str]
    inputs: dict[str, Any]
    secret_paths: set[str]
    state: dict[str, Any] = field(default_factory=dict)

    def is_secret(self, path: str) -> bool:
        """True when the input at `path` is secret itself, sits inside a secret, or holds one."""

        def within(inner: str, outer: str) -> bool:
            return inner == outer or inner.startswith(outer + ".") or inner.startswith(outer + "[")

        return any(within(path, p) or within(p, path) for p in self.secret_paths)

    def plain_strings(self, value: object | None = None, path: str = "") -> list[tuple[str, str]]:
        """Every string input (or within `value` at `path`) that is not secret, with its path."""
        if value is None and not path:
            value = self.inputs
        if isinstance(value, dict):
            return [pair for k, v in value.items() for pair in self.plain_strings(v, f"{path}.{k}" if path else k)]
        if isinstance(value, list):
            return [pair for i, v in enumerate(value) for pair in self.plain_strings(v, f"{path}[{i}]")]
        if isinstance(value, str) and not self.is_secret(path):
            return [(path, value)]
        return []


def _secret_paths(value: Any, path: str = "") -> set[str]:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return {path}
        found: set[str] = set()
        for key, inner in value.items():
            found |= _secret_paths(inner, f"{path}.{key}" if path else key)
        return found
    if isinstance(value, list):
        found = set()
        for index, inner in enumerate(value):
            found |= _secret_paths(inner, f"{path}[{index}]")
        return found
    return set()


def _unwrap_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return _unwrap_secrets(value["value"])
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def _fake_digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class FakeProvider(pulumi.runtime.Mocks):
    """Computes the outputs a real provider would, deterministically from the inputs."""

    def __init__(self, command_stdout: Mapping[str, str]) -> None:
        self.command_stdout = command_stdout

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        token = args.typ
        if token == "docker:index/container:Container":
            state.setdefault("name", f"{args.name}-{_fake_digest(args.name)[:7]}")
        elif token == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = "sha256:" + _fake_digest(args.inputs["name"])
        elif token == "docker:index/image:Image":
            state["repoDigest"] = "sha256:" + _fake_digest(args.inputs.get("build"))
        elif token in ("docker:index/secret:Secret", "docker:index/serviceConfig:ServiceConfig"):
            # Auto-named by the provider's Check (no `name` input): a stable stand-in here.
            state.setdefault("name", f"{args.name}-{_fake_digest(args.name)[:7]}")
            # Every input is ForceNew (TF resource_docker_secret.go, resource_docker_config.go): a new
            # content is a new object, with a new ID, which the services mounting it then name.
            return f"{args.name}-{_fake_digest(args.inputs)[:12]}", state
        elif token == "docker:index/registryImage:RegistryImage":
            state["sha256Digest"] = "sha256:" + _fake_digest(args.inputs["name"], args.inputs.get("triggers"))
        elif token == "random:index/randomPassword:RandomPassword":
            state["result"] = ("Mock" + _fake_digest(args.name) * 2)[: int(args.inputs["length"])]
        elif token == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = "-----BEGIN PRIVATE KEY-----\nmock\n-----END PRIVATE KEY-----\n"
        elif token == "tls:index/selfSignedCert:SelfSignedCert":
            state["certPem"] = "-----BEGIN CERTIFICATE-----\nmock\n-----END CERTIFICATE-----\n"
            state["validityEndTime"] = "2027-11-28T00:00:00Z"
        elif token == "command:local:Command":
            state["stdout"] = next((v for k, v in self.command_stdout.items() if args.name.endswith(k)), "")
            tag = (args.inputs.get("environment") or {}).get("IMAGE_TAG")
            if tag and not state["stdout"]:
                # What scripts/api_image.py prints: the image ID follows the version built.
                image = "sha256:" + _fake_digest(args.inputs["environment"])
                state["stdout"] = json.dumps({"image": image, "tag": tag, "versions": [{"tag": tag, "serving": True}]})
            state["stderr"] = ""
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object)
            record = Registered(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                dependencies=list(request.dependencies),
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                delete_before_replace=request.deleteBeforeReplace,
                delete_before_replace_defined=request.deleteBeforeReplaceDefined,
                replace_on_changes=list(request.replaceOnChanges),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                inputs=_unwrap_secrets(pulumi.runtime.rpc.deserialize_properties(request.object)),
                secret_paths=_secret_paths(raw),
                state=self.resources[response.urn].state if response.urn in self.resources else {},
            )
            self.registered.append(record)
        return response


@dataclass
class Deployment:
    resources: list[Registered]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == token]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name}, found {[r.name for r in self.resources]}"
        return matches[0]

    def plain_secret_leaks(self, secrets: Sequence[str]) -> list[str]:
        """`resource: input path` of every non-secret string input that holds one of `secrets`, as it
        is or base64-encoded (the form Swarm secrets and configs carry their data in)."""
        forms = [(secret, base64.b64encode(secret.encode()).decode()) for secret in secrets]
        return [
            f"{resource.name}: {path}"
            for resource in self.resources
            for path, text in resource.plain_strings()
            if any(plain in text or encoded in text for plain, encoded in forms)
        ]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def containers(self, role: str) -> list[Registered]:
        return [
            r
            for r in self.of_type("docker:index/container:Container")
            if {"label": "catalogizer.role", "value": role} in r.inputs.get("labels", [])
        ]

    def services(self) -> list[Registered]:
        """Containers that run: every docker Container except the never-started config carriers
        (components/container_defaults.config_carrier)."""
        return [r for r in self.of_type("docker:index/container:Container") if r.inputs.get("start") is not False]

    def carriers(self) -> list[Registered]:
        return [r for r in self.of_type("docker:index/container:Container") if r.inputs.get("start") is False]

    def container(self, role: str) -> Registered:
        (only,) = self.containers(role)
        return only

    def env(self, resource: Registered) -> dict[str, str]:
        return dict(item.split("=", 1) for item in resource.inputs.get("envs", []))

    def waits_for(self, dependent: Registered, dependency: Registered) -> bool:
        """True when `dependent` cannot be created before `dependency`, directly or through others."""
        seen: set[str] = set()
        stack = list(dependent.dependencies)
        while stack:
            urn = stack.pop()
            if urn == dependency.urn:
                return True
            if urn in seen:
                continue
            seen.add(urn)
            stack.extend(self.by_urn(urn).dependencies if any(r.urn == urn for r in self.resources) else [])
        return False


def stack_config(stack: str) -> dict[str, Any]:
    """The `config:` map of a committed Pulumi.<stack>.yaml."""
    data = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())
    return dict(data.get("config") or {})


def _as_config_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


class ProgramFailed(Exception):
    def __init__(self, error: BaseException, declared: list[Registered]) -> None:
        super().__init__(str(error))
        self.error = error
        self.declared = declared


def run_program(
    stack: str,
    config: Mapping[str, Any],
    *,
    secret_keys: tuple[str, ...] = (),
    cwd: Path = PROJECT_DIR,
    command_stdout: Mapping[str, str] | None = None,
) -> Deployment:
    """Runs __main__.py for `stack` with `config` (keys with or without the catalogizer: prefix)."""
    full = {(k if ":" in k else f"catalogizer:{k}"): _as_config_value(v) for k, v in config.items()}
    secrets = [k if ":" in k else f"catalogizer:{k}" for k in secret_keys]
    pulumi.runtime.set_all_config(full, secrets)
    mocks = FakeProvider(command_stdout or {})
    monitor = RecordingMonitor(mocks)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="catalogizer", stack=stack, preview=False, monitor=monitor)
    with _cwd(cwd):
        try:
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(MAIN), run_name="__main__")))
        except Exception as exc:
            raise ProgramFailed(exc, monitor.registered) from exc
    root = runtime_settings.get_root_resource()
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    for name, value in getattr(root, "outputs", {}).items():
        output = pulumi.Output.from_input(value)
        outputs[name] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            secret_outputs.add(name)
    return Deployment(monitor.registered, outputs, secret_outputs)
