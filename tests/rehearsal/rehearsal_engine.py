"""A test-only deployment engine: the unmodified program, carried out for real.

`Rehearsal.up()` runs __main__.py under Pulumi's own mock runtime (`set_mocks`) with a
monitor that, for every resource the SDK registers, does what `pulumi up` and the
provider would do to the real Docker engine: create, update, replace (delete-before-replace
or create-before-delete), or leave alone, judged against a state file kept between runs.
The SDK registers a resource only once its inputs and `depends_on` have resolved, so doing
the work inside RegisterResource keeps the program's dependency order; independent
resources run concurrently, as the engine's parallel steps do.

Any resource type, input or resource option that is not implemented here is REFUSED with
an error naming the resource and the input: the rehearsal never deploys something other
than what the program declares. See README.md beside this file for the mapping.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import ipaddress
import json
import os
import runpy
import secrets
import string
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import docker
import docker.errors
import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from docker.types import LogConfig, Mount
from program import MAIN, PROJECT_DIR, _as_config_value, _cwd, _unwrap_secrets
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor, Mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

Inputs = dict[str, Any]


class RehearsalError(Exception):
    """A resource could not be carried out; the message names it."""


class Refused(RehearsalError):
    """The program uses a resource type, input or option this engine does not implement."""


class DeploymentFailed(RehearsalError):
    def __init__(self, message: str, failures: list[str], events: list[Event]) -> None:
        super().__init__(message)
        self.failures = failures
        self.events = events


@dataclass
class Event:
    at: float
    action: str  # create, update, replace-delete, delete, same, retain, protect-keep, failed
    urn: str
    detail: str = ""

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class Change:
    """What the provider reports back: physical id, outputs, and whether it failed half-way."""

    id: str
    outputs: Inputs
    tainted: bool = False


# --- input checking -------------------------------------------------------------------


class Spec:
    """Allowed input keys; nested dicts/lists of dicts get their own Spec."""

    def __init__(self, keys: set[str], nested: Mapping[str, Spec] | None = None) -> None:
        self.keys = keys
        self.nested = dict(nested or {})

    def check(self, where: str, value: Mapping[str, Any], path: str = "") -> None:
        for key, inner in value.items():
            full = f"{path}.{key}" if path else key
            if key not in self.keys:
                raise Refused(f"{where}: input '{full}' is not implemented by the rehearsal engine; refusing to deploy")
            spec = self.nested.get(key)
            if spec is None or inner is None:
                continue
            items = inner if isinstance(inner, list) else [inner]
            for index, item in enumerate(items):
                if isinstance(item, Mapping):
                    spec.check(where, item, f"{full}[{index}]" if isinstance(inner, list) else full)


def _canonical(value: Any) -> str:
    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True)


def _changed_keys(old: Inputs, new: Inputs) -> set[str]:
    keys = set(old) | set(new)
    return {k for k in keys if _canonical(old.get(k)) != _canonical(new.get(k))}


def _replace_on_changes(paths: list[str], changed: set[str]) -> bool:
    """The `replace_on_changes` option: a change under any listed property path replaces."""
    tops = {p.split("[", 1)[0].split(".", 1)[0] for p in paths}
    return "*" in tops or bool(tops & changed)


def _int(value: Any, default: int = 0) -> int:
    return default if value is None else int(value)


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration for the forms the provider accepts ("5s", "1m30s", "250ms")."""
    total, number, i = 0.0, "", 0
    if text in ("", "0"):
        return 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if text.startswith(u, i)), None)
        if unit is None or not number:
            raise ValueError(f"invalid duration {text!r}")
        total += float(number) * _DURATION_UNITS[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"invalid duration {text!r} (missing unit)")
    return int(total * 1e9)


# --- providers ---------------------------------------------------------------------------


class Provider:
    token = ""
    spec = Spec(set())
    # Inputs that change in place; any other changed input replaces the resource.
    updatable: frozenset[str] = frozenset()
    # The bridge makes a replacement delete-before-replace when an auto-named `name` is set.
    autonamed = False

    def __init__(self, rehearsal: Rehearsal) -> None:
        self.r = rehearsal

    def check(self, where: str, inputs: Inputs) -> None:
        self.spec.check(where, inputs)

    def needs_replace(self, old: Mapping[str, Any], inputs: Inputs) -> bool:
        changed = _changed_keys(old["inputs"], inputs)
        return bool(changed - self.updatable)

    def still_current(self, old: Mapping[str, Any], inputs: Inputs) -> bool:
        """False when something outside the inputs makes the provider see a diff."""
        return True

    def create(self, name: str, inputs: Inputs) -> Change:
        raise NotImplementedError

    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs) -> Change:
        return Change(old["id"], {**old["outputs"], **inputs})

    def delete(self, entry: Mapping[str, Any]) -> None:
        raise NotImplementedError


class NetworkProvider(Provider):
    token = "docker:index/network:Network"
    spec = Spec({"name", "driver", "labels"}, {"labels": Spec({"label", "value"})})
    autonamed = True

    def create(self, name: str, inputs: Inputs) -> Change:
        net_name = inputs.get("name") or f"{name}-{secrets.token_hex(4)[:7]}"
        labels = {item["label"]: item["value"] for item in inputs.get("labels") or []}
        net = self.r.docker.networks.create(net_name, driver=inputs.get("driver") or "bridge", labels=labels)
        return Change(net.id, {**inputs, "name": net_name, "driver": inputs.get("driver") or "bridge"})

    def delete(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.r.docker.networks.get(entry["id"]).remove()


class VolumeProvider(Provider):
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
    token = "docker:index/remoteImage:RemoteImage"
    spec = Spec({"name", "keepLocally"})

    def check(self, where: str, inputs: Inputs) -> None:
        super().check(where, inputs)
        if inputs.get("keepLocally") is not True:
            raise Refused(f"{where}: input 'keepLocally' must be true (the rehearsal never removes shared images)")

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


def _context_digest(context: Path, dockerfile: Path, args: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(dockerfile.read_bytes())
    digest.update(_canonical(dict(args)).encode())
    return digest.hexdigest()


class ImageProvider(Provider):
    """pulumi-docker v4 `Image` with `skipPush`: a local build; delete leaves the image."""

    token = "docker:index/image:Image"
    spec = Spec(
        {"imageName", "build", "skipPush", "buildOnPreview"},
        {"build": Spec({"context", "dockerfile", "args"})},
    )
    updatable = frozenset({"imageName", "build", "skipPush", "buildOnPreview"})

    def check(self, where: str, inputs: Inputs) -> None:
        super().check(where, inputs)
        if inputs.get("skipPush") is not True:
            raise Refused(f"{where}: input 'skipPush' must be true (no registry: the rehearsal never pushes)")
        if not (inputs.get("build") or {}).get("context"):
            raise Refused(f"{where}: input 'build.context' is required by the rehearsal engine")

    def _paths(self, inputs: Inputs) -> tuple[Path, Path]:
        build = inputs["build"]
        context = Path(build["context"]).resolve()
        dockerfile = Path(build.get("dockerfile") or "Dockerfile")
        dockerfile = dockerfile if dockerfile.is_absolute() else context / dockerfile
        return context, dockerfile.resolve()

    def still_current(self, old: Mapping[str, Any], inputs: Inputs) -> bool:
        context, dockerfile = self._paths(inputs)
        args = inputs["build"].get("args") or {}
        return old["outputs"].get("contextHash") == _context_digest(context, dockerfile, args)

    def create(self, name: str, inputs: Inputs) -> Change:
        context, dockerfile = self._paths(inputs)
        try:
            relative = dockerfile.relative_to(context)
        except ValueError:
            raise Refused(f"{name}: input 'build.dockerfile' outside 'build.context' is not implemented") from None
        args = {k: str(v) for k, v in (inputs["build"].get("args") or {}).items()}
        tag = inputs["imageName"]
        log: list[str] = []
        for chunk in self.r.docker.api.build(
            path=str(context), dockerfile=str(relative), buildargs=args, tag=tag, rm=True, decode=True
        ):
            if "error" in chunk:
                tail = "".join(log[-20:])
                raise RehearsalError(f"docker build of {tag} failed: {chunk['error'].strip()}\n{tail}")
            log.append(chunk.get("stream", ""))
        image = self.r.docker.images.get(tag)
        self.r.built_images.update({tag, image.id})
        outputs = {
            **inputs,
            "baseImageName": tag,
            "repoDigest": image.id,
            "contextHash": _context_digest(context, dockerfile, args),
        }
        return Change(tag, outputs)

    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs) -> Change:
        return self.create(name, inputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass  # v4 leaves built images in the local image store.


class RandomPasswordProvider(Provider):
    token = "random:index/randomPassword:RandomPassword"
    spec = Spec({"length", "special", "upper", "lower", "numeric", "minLower", "minUpper", "minNumeric", "minSpecial"})
    SPECIAL = "!@#$%&*()-_=+[]{}<>:?"

    def create(self, name: str, inputs: Inputs) -> Change:
        length = _int(inputs["length"])
        sets = []
        for flag, minimum, chars in (
            ("lower", "minLower", string.ascii_lowercase),
            ("upper", "minUpper", string.ascii_uppercase),
            ("numeric", "minNumeric", string.digits),
            ("special", "minSpecial", self.SPECIAL),
        ):
            if inputs.get(flag, True) is not False:
                sets.append((chars, _int(inputs.get(minimum))))
        rng = secrets.SystemRandom()
        chars = [rng.choice(cs) for cs, minimum in sets for _ in range(minimum)]
        if len(chars) > length:
            raise RehearsalError(f"{name}: the minimum counts add up to more than length {length}")
        pool = "".join(cs for cs, _ in sets)
        chars += [rng.choice(pool) for _ in range(length - len(chars))]
        rng.shuffle(chars)
        outputs = {
            "length": length,
            "lower": inputs.get("lower", True),
            "upper": inputs.get("upper", True),
            "numeric": inputs.get("numeric", True),
            "special": inputs.get("special", True),
            **inputs,
            "result": "".join(chars),
        }
        return Change("none", outputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass


class PrivateKeyProvider(Provider):
    token = "tls:index/privateKey:PrivateKey"
    spec = Spec({"algorithm", "ecdsaCurve", "rsaBits"})
    CURVES: ClassVar[Any] = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}

    def create(self, name: str, inputs: Inputs) -> Change:
        algorithm = inputs["algorithm"]
        traditional = serialization.PrivateFormat.TraditionalOpenSSL
        if algorithm == "ECDSA":
            key: Any = ec.generate_private_key(self.CURVES[inputs.get("ecdsaCurve") or "P224"]())
        elif algorithm == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=_int(inputs.get("rsaBits"), 2048))
        elif algorithm == "ED25519":
            key, traditional = ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8
        else:
            raise Refused(f"{name}: input 'algorithm' value {algorithm!r} is not implemented")
        pem = serialization.Encoding.PEM
        none = serialization.NoEncryption()
        public_pem = key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        outputs = {
            **inputs,
            "privateKeyPem": key.private_bytes(pem, traditional, none).decode(),
            "privateKeyPemPkcs8": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, none).decode(),
            "publicKeyPem": public_pem,
        }
        return Change(hashlib.sha1(public_pem.encode()).hexdigest(), outputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass


class SelfSignedCertProvider(Provider):
    token = "tls:index/selfSignedCert:SelfSignedCert"
    spec = Spec(
        {
            "privateKeyPem",
            "subject",
            "dnsNames",
            "ipAddresses",
            "validityPeriodHours",
            "earlyRenewalHours",
            "allowedUses",
            "isCaCertificate",
        },
        {"subject": Spec({"commonName", "organization", "organizationalUnit", "country", "locality", "province"})},
    )
    SUBJECT: ClassVar[Any] = {
        "commonName": NameOID.COMMON_NAME,
        "organization": NameOID.ORGANIZATION_NAME,
        "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "country": NameOID.COUNTRY_NAME,
        "locality": NameOID.LOCALITY_NAME,
        "province": NameOID.STATE_OR_PROVINCE_NAME,
    }
    KEY_USAGE: ClassVar[Any] = {
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "cert_signing",
        "crl_signing",
        "encipher_only",
        "decipher_only",
    }
    KEY_USAGE_ARG: ClassVar[Any] = {"cert_signing": "key_cert_sign", "crl_signing": "crl_sign"}
    EXT_USAGE: ClassVar[Any] = {
        "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
        "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
        "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
        "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    }

    def still_current(self, old: Mapping[str, Any], inputs: Inputs) -> bool:
        # ready_for_renewal forces a replacement inside the early-renewal window.
        end = dt.datetime.strptime(old["outputs"]["validityEndTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        early = dt.timedelta(hours=_int(inputs.get("earlyRenewalHours")))
        return dt.datetime.now(dt.UTC) < end - early

    def create(self, name: str, inputs: Inputs) -> Change:
        key: Any = serialization.load_pem_private_key(inputs["privateKeyPem"].encode(), password=None)
        subject = x509.Name(
            [x509.NameAttribute(self.SUBJECT[k], v) for k, v in (inputs.get("subject") or {}).items() if v]
        )
        start = dt.datetime.now(dt.UTC).replace(microsecond=0)
        end = start + dt.timedelta(hours=_int(inputs["validityPeriodHours"]))
        uses = list(inputs.get("allowedUses") or [])
        unknown = [u for u in uses if u not in self.KEY_USAGE and u not in self.EXT_USAGE]
        if unknown:
            raise Refused(f"{name}: input 'allowedUses' value {unknown[0]!r} is not implemented")
        is_ca = bool(inputs.get("isCaCertificate"))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        )
        usage = {self.KEY_USAGE_ARG.get(u, u): u in uses for u in self.KEY_USAGE}
        if any(usage.values()):
            builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
        ext = [self.EXT_USAGE[u] for u in uses if u in self.EXT_USAGE]
        if ext:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ext), critical=False)
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in inputs.get("dnsNames") or []]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in inputs.get("ipAddresses") or []]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        cert = builder.sign(key, algorithm)
        outputs = {
            **inputs,
            "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "validityStartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validityEndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "readyForRenewal": False,
        }
        return Change(str(cert.serial_number), outputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass


class CommandProvider(Provider):
    """pulumi-command `local.Command`: `/bin/sh -c` (or `interpreter`) in `dir`, env = ours + `environment`."""

    token = "command:local:Command"
    spec = Spec({"create", "update", "delete", "dir", "environment", "triggers", "interpreter"})
    updatable = frozenset({"create", "update", "delete", "dir", "environment", "interpreter"})

    def _run(self, name: str, command: str, inputs: Inputs, extra_env: Mapping[str, str] | None = None) -> Inputs:
        argv = [*(inputs.get("interpreter") or ["/bin/sh", "-c"]), command]
        env = {**os.environ, **{k: str(v) for k, v in (inputs.get("environment") or {}).items()}, **(extra_env or {})}
        cwd = inputs.get("dir") or os.getcwd()
        started = time.time()
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        self.r.log(f"command {name}: {command!r} exit {result.returncode} in {time.time() - started:.1f}s")
        stdout, stderr = result.stdout.rstrip("\n"), result.stderr.rstrip("\n")
        if result.returncode != 0:
            raise RehearsalError(f"exit status {result.returncode}: running {command!r}:\n{stderr}")
        return {**inputs, "stdout": stdout, "stderr": stderr}

    def needs_replace(self, old: Mapping[str, Any], inputs: Inputs) -> bool:
        return _canonical(old["inputs"].get("triggers")) != _canonical(inputs.get("triggers"))

    def create(self, name: str, inputs: Inputs) -> Change:
        if not inputs.get("create"):
            return Change(uuid.uuid4().hex, {**inputs, "stdout": "", "stderr": ""})
        return Change(uuid.uuid4().hex, self._run(name, inputs["create"], inputs))

    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs) -> Change:
        command = inputs.get("update") or inputs.get("create")
        if not command:
            return Change(old["id"], {**old["outputs"], **inputs})
        return Change(old["id"], self._run(name, command, inputs, self._previous(old)))

    @staticmethod
    def _previous(entry: Mapping[str, Any]) -> dict[str, str]:
        return {
            "PULUMI_COMMAND_STDOUT": entry["outputs"].get("stdout", ""),
            "PULUMI_COMMAND_STDERR": entry["outputs"].get("stderr", ""),
        }

    def delete(self, entry: Mapping[str, Any]) -> None:
        # With no `delete` command, deleting a Command does nothing for real.
        if entry["inputs"].get("delete"):
            self._run(entry["name"], entry["inputs"]["delete"], entry["inputs"], self._previous(entry))


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
            "shmSize",
            "stopSignal",
            "stopTimeout",
            "destroyGraceSeconds",
            "wait",
            "waitTimeout",
            "mustRun",
            "mounts",
            "networksAdvanced",
            "ports",
            "uploads",
            "logDriver",
            "logOpts",
        },
        {
            "labels": Spec({"label", "value"}),
            "healthcheck": Spec({"tests", "interval", "timeout", "startPeriod", "retries"}),
            "mounts": Spec({"target", "type", "source", "readOnly"}),
            "networksAdvanced": Spec({"name", "aliases"}),
            "ports": Spec({"internal", "external", "ip", "protocol"}),
            "uploads": Spec({"file", "content", "contentBase64", "executable"}),
        },
    )
    # The provider updates these in place; everything else is ForceNew.
    updatable = frozenset({"restart", "memory", "destroyGraceSeconds", "wait", "waitTimeout", "mustRun"})
    autonamed = True

    def check(self, where: str, inputs: Inputs) -> None:
        super().check(where, inputs)
        for index, mount in enumerate(inputs.get("mounts") or []):
            if mount.get("type") not in ("volume", "bind"):
                raise Refused(f"{where}: input 'mounts[{index}].type' value {mount.get('type')!r} is not implemented")
        for index, upload in enumerate(inputs.get("uploads") or []):
            if ("content" in upload) == ("contentBase64" in upload):
                raise Refused(f"{where}: input 'uploads[{index}]' needs exactly one of content / contentBase64")

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
        content = upload.get("content")
        data = content.encode() if content is not None else base64.b64decode(upload["contentBase64"])
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name=upload["file"].lstrip("/"))
            info.size = len(data)
            info.mode = 0o744 if upload.get("executable") else 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def create(self, name: str, inputs: Inputs) -> Change:
        api = self.r.docker.api
        cname = inputs.get("name") or f"{name}-{secrets.token_hex(4)[:7]}"
        ports = inputs.get("ports") or []
        bindings: dict[str, list[tuple[str, int]]] = {}
        exposed = []
        for port in ports:
            key = f"{_int(port['internal'])}/{port.get('protocol') or 'tcp'}"
            exposed.append((_int(port["internal"]), port.get("protocol") or "tcp"))
            external = port.get("external")
            bindings.setdefault(key, []).append((port.get("ip") or "0.0.0.0", _int(external) if external else None))
        mounts = [
            Mount(target=m["target"], source=m["source"], type=m["type"], read_only=bool(m.get("readOnly")))
            for m in inputs.get("mounts") or []
        ]
        networks = inputs.get("networksAdvanced") or []
        memory = _int(inputs.get("memory"))
        shm = _int(inputs.get("shmSize"))
        host_config = api.create_host_config(
            restart_policy={"Name": inputs.get("restart") or "no", "MaximumRetryCount": 0},
            mem_limit=memory * 1024 * 1024 if memory else None,
            shm_size=shm * 1024 * 1024 if shm else None,
            log_config=LogConfig(type=inputs.get("logDriver") or "json-file", config=inputs.get("logOpts") or {}),
            mounts=mounts or None,
            port_bindings={k: v if len(v) > 1 else v[0] for k, v in bindings.items()} or None,
            network_mode=networks[0]["name"] if networks else None,
            init=False,
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
        )
        cid = created["Id"]
        outputs = {**inputs, "name": cname}
        try:
            for extra in networks[1:]:
                api.connect_container_to_network(cid, extra["name"], aliases=list(extra.get("aliases") or []) or None)
            for upload in inputs.get("uploads") or []:
                api.put_archive(cid, "/", self._upload_tar(upload))
            api.start(cid)
            self._check_running(cid, cname, inputs)
        except docker.errors.APIError as exc:
            raise PartialFailure(Change(cid, outputs, tainted=True), f"container {cname}: {exc}") from exc
        if inputs.get("wait"):
            error = self._wait_healthy(cid, cname, _int(inputs.get("waitTimeout"), 60))
            if error:
                # The provider has already recorded the container: it stays, tainted, like a failed create.
                raise PartialFailure(Change(cid, outputs, tainted=True), error)
        return Change(cid, outputs)

    def _logs(self, cid: str, tail: int = 10) -> str:
        try:
            return self.r.docker.api.logs(cid, tail=tail).decode(errors="replace").rstrip()
        except docker.errors.APIError as exc:
            return f"(no logs: {exc})"

    def _check_running(self, cid: str, cname: str, inputs: Inputs) -> None:
        if inputs.get("mustRun") is False:
            return
        time.sleep(0.2)
        state = self.r.docker.api.inspect_container(cid)["State"]
        if not state.get("Running") and state.get("Status") in ("exited", "dead"):
            logs = self._logs(cid)
            self.r.docker.api.remove_container(cid, force=True, v=True)
            raise RehearsalError(
                f"container {cname} exited immediately (exit {state.get('ExitCode')}); last log lines:\n{logs}"
            )

    def _wait_healthy(self, cid: str, cname: str, timeout: int) -> str | None:
        started = time.monotonic()
        while True:
            state = self.r.docker.api.inspect_container(cid)["State"]
            health = state.get("Health") or {}
            status = health.get("Status")
            elapsed = time.monotonic() - started
            if status == "healthy":
                self.r.log(f"container {cname} healthy after {elapsed:.1f}s")
                return None
            stopped = state.get("Status") in ("exited", "dead")
            # Docker's own verdict: the health check failed `retries` times in a row.
            if stopped or status == "unhealthy" or elapsed > timeout or not health:
                probes = health.get("Log") or []
                last = (probes[-1].get("Output") or "").strip()[:300] if probes else "no probe ran"
                why = (
                    "has no health check"
                    if not health
                    else f"exited (code {state.get('ExitCode')})"
                    if stopped
                    else f"is {status} after {elapsed:.0f}s"
                    if status == "unhealthy"
                    else f"timed out after {timeout}s (status {status})"
                )
                return (
                    f"container wait failed: health check of container {cname} did not pass "
                    f"(wait=true, waitTimeout={timeout}s): it {why}; last probe: {last!r}; "
                    f"last log lines:\n{self._logs(cid)}"
                )
            time.sleep(0.5)

    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs) -> Change:
        changed = _changed_keys(old["inputs"], inputs)
        kwargs: dict[str, Any] = {}
        if "restart" in changed:
            kwargs["restart_policy"] = {"Name": inputs.get("restart") or "no", "MaximumRetryCount": 0}
        if "memory" in changed:
            kwargs["mem_limit"] = _int(inputs.get("memory")) * 1024 * 1024
        if kwargs:
            self.r.docker.api.update_container(old["id"], **kwargs)
        return Change(old["id"], {**old["outputs"], **inputs, "name": old["outputs"]["name"]})

    def delete(self, entry: Mapping[str, Any]) -> None:
        api = self.r.docker.api
        grace = _int(entry["inputs"].get("destroyGraceSeconds"))
        with contextlib.suppress(docker.errors.NotFound):
            if grace > 0:
                api.stop(entry["id"], timeout=grace)
            api.remove_container(entry["id"], force=True, v=True)


class NotCarriedOut(RehearsalError):
    """A step the engine no longer starts because an earlier one failed (as `pulumi up` stops)."""


class PartialFailure(RehearsalError):
    """The provider created something before failing: it is recorded (tainted) in the state."""

    def __init__(self, change: Change, message: str) -> None:
        super().__init__(message)
        self.change = change


PROVIDERS: tuple[type[Provider], ...] = (
    NetworkProvider,
    VolumeProvider,
    RemoteImageProvider,
    ImageProvider,
    RandomPasswordProvider,
    PrivateKeyProvider,
    SelfSignedCertProvider,
    CommandProvider,
    ContainerProvider,
)

# Resource options the engine does not implement; any of them set is refused.
_REFUSED_OPTIONS = {
    "ignoreChanges": "ignore_changes",
    "importId": "import_",
    "deletedWith": "deleted_with",
    "replace_with": "replace_with",
    "provider": "provider",
    "providers": "providers",
    "transforms": "transforms",
    "aliasURNs": "aliases",
}
# Message-typed request fields: refused when present.
_REFUSED_MESSAGE_OPTIONS = {
    "customTimeouts": "custom_timeouts",
    "replacement_trigger": "replacement_trigger",
    "hooks": "hooks",
}


# --- the monitor -----------------------------------------------------------------------------


class _NoMocks(Mocks):
    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        raise Refused(f"invoke {args.token}: function calls are not implemented by the rehearsal engine")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        raise Refused(f"{args.name} ({args.typ}): read/get of existing resources is not implemented")


class RehearsalMonitor(MockMonitor):
    def __init__(self, rehearsal: Rehearsal) -> None:
        super().__init__(_NoMocks())
        self.rehearsal = rehearsal

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        inputs = _unwrap_secrets(rpc.deserialize_properties(request.object))
        try:
            id_, outputs = self.rehearsal._register(urn, request, inputs)
        except NotCarriedOut:
            raise
        except RehearsalError as exc:
            self.rehearsal._fail(urn, str(exc))
            raise
        except Exception as exc:
            message = f"{request.name} ({request.type}): {type(exc).__name__}: {exc}"
            self.rehearsal._fail(urn, message)
            raise RehearsalError(message) from exc
        obj = _sync_await(rpc.serialize_properties(outputs, {}))
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, id_, outputs)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)


# --- the engine --------------------------------------------------------------------------------


@dataclass
class UpResult:
    outputs: dict[str, Any]
    events: list[Event]
    seconds: float

    def actions(self, action: str) -> list[str]:
        return [e.name for e in self.events if e.action == action]


@dataclass
class DestroyResult:
    deleted: list[str]
    kept_protected: list[str]
    retained: list[str]
    events: list[Event] = field(default_factory=list)


def _docker_client() -> docker.DockerClient:
    # The provider's `docker:host` defaults to DOCKER_HOST, then the local socket.
    return docker.from_env(timeout=300)


class Rehearsal:
    """One stack: its state file, the Docker client, and the up/destroy operations."""

    def __init__(
        self,
        state_path: Path,
        project_dir: Path = PROJECT_DIR,
        client: docker.DockerClient | None = None,
        program: Path = MAIN,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.state_path = state_path
        self.project_dir = project_dir
        self.program = program
        self.docker = client or _docker_client()
        self.providers = {p.token: p(self) for p in PROVIDERS}
        self.built_images: set[str] = set()
        self._log = log or (lambda line: None)
        self._lock = threading.RLock()
        self._seq = 0
        self._reset_run()

    # -- state file ---------------------------------------------------------------------------
    def load_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {"resources": {}, "pending_deletes": [], "outputs": {}, "seq": 0}
        return json.loads(self.state_path.read_text())

    def _save(self) -> None:
        state = {
            "resources": self.current,
            "pending_deletes": self.pending,
            "outputs": self.outputs,
            "seq": self._seq,
        }
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
        tmp.replace(self.state_path)

    def _reset_run(self) -> None:
        self.current: dict[str, dict[str, Any]] = {}
        self.pending: list[dict[str, Any]] = []
        self.outputs: dict[str, Any] = {}
        self.registered: set[str] = set()
        self.events: list[Event] = []
        self.failures: list[str] = []

    def log(self, line: str) -> None:
        self._log(f"[rehearsal] {line}")

    def _event(self, action: str, urn: str, detail: str = "") -> None:
        event = Event(time.time(), action, urn, detail)
        self.events.append(event)
        self.log(f"{action:<14} {event.name}{' ' + detail if detail else ''}")

    def _fail(self, urn: str, message: str) -> None:
        with self._lock:
            self.failures.append(message)
            self._event("failed", urn, message.splitlines()[0][:200])

    # -- registration ----------------------------------------------------------------------
    def _check_options(self, where: str, request: Any) -> None:
        for field_name, option in _REFUSED_OPTIONS.items():
            value = getattr(request, field_name, None)
            if value is not None and len(value):
                raise Refused(f"{where}: resource option '{option}' is not implemented by the rehearsal engine")
        for alias in request.aliases:
            # The SDK itself adds type-only aliases (e.g. docker.Image's old type token); with no
            # state under the old type they change nothing. Any other alias is refused.
            spec = alias.spec if alias.HasField("spec") else None
            if spec is None or spec.name or spec.stack or spec.project or spec.parentUrn or spec.noParent:
                raise Refused(f"{where}: resource option 'aliases' is not implemented by the rehearsal engine")
        for field_name, option in _REFUSED_MESSAGE_OPTIONS.items():
            try:
                present = request.HasField(field_name)
            except ValueError:
                present = False
            if present and getattr(request, field_name).ByteSize():
                raise Refused(f"{where}: resource option '{option}' is not implemented by the rehearsal engine")

    def _register(self, urn: str, request: Any, inputs: Inputs) -> tuple[str, Inputs]:
        where = f"{request.name} ({request.type})"
        self._check_options(where, request)
        entry_base = {
            "urn": urn,
            "type": request.type,
            "name": request.name,
            "parent": request.parent,
            "custom": request.custom,
            "dependencies": list(request.dependencies),
            "protect": bool(request.protect),
            "retain_on_delete": bool(request.retainOnDelete),
            "delete_before_replace": bool(request.deleteBeforeReplace),
            "replace_on_changes": list(request.replaceOnChanges),
        }
        if not request.custom:
            with self._lock:
                self.registered.add(urn)
                self.current[urn] = {**entry_base, "id": "", "inputs": {}, "outputs": {}, "seq": self._next_seq()}
            return "", {}
        provider = self.providers.get(request.type)
        if provider is None:
            raise Refused(f"{where}: resource type {request.type} is not implemented by the rehearsal engine")
        provider.check(where, inputs)
        with self._lock:
            if self.failures:
                self._event("skipped", urn, "the deployment already failed")
                raise NotCarriedOut(f"{where}: not carried out, the deployment already failed")
            self.registered.add(urn)
            old = self.current.get(urn)
        try:
            return self._step(urn, where, provider, old, inputs, entry_base)
        except PartialFailure as exc:
            with self._lock:
                self.current[urn] = self._entry(entry_base, exc.change, inputs)
                self._save()
            raise RehearsalError(f"{where}: {exc}") from None
        except Refused:
            raise
        except RehearsalError as exc:
            raise RehearsalError(f"{where}: {exc}") from None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _entry(self, base: Mapping[str, Any], change: Change, inputs: Inputs) -> dict[str, Any]:
        return {
            **base,
            "id": change.id,
            "inputs": inputs,
            "outputs": change.outputs,
            "tainted": change.tainted,
            "seq": self._next_seq(),
        }

    def _step(
        self, urn: str, where: str, provider: Provider, old: dict[str, Any] | None, inputs: Inputs, base: dict
    ) -> tuple[str, Inputs]:
        if old is None or not old.get("custom"):
            change = provider.create(base["name"], inputs)
            with self._lock:
                self.current[urn] = self._entry(base, change, inputs)
                self._event("create", urn, change.outputs.get("name", "") if "name" in change.outputs else "")
                self._save()
            return change.id, change.outputs
        unchanged = _canonical(old["inputs"]) == _canonical(inputs)
        if unchanged and not old.get("tainted") and provider.still_current(old, inputs):
            with self._lock:
                self.current[urn] = {**old, **base, "seq": old["seq"]}
                self._event("same", urn)
                self._save()
            return old["id"], old["outputs"]
        replace = (
            old.get("tainted")
            or provider.needs_replace(old, inputs)
            or not provider.still_current(old, inputs)
            or _replace_on_changes(base["replace_on_changes"], _changed_keys(old["inputs"], inputs))
        )
        if provider.token == ImageProvider.token:
            replace = False  # v4 rebuilds an Image in place
        if not replace:
            change = provider.update(base["name"], old, inputs)
            with self._lock:
                self.current[urn] = {**self._entry(base, change, inputs), "seq": old["seq"]}
                self._event("update", urn, ",".join(sorted(_changed_keys(old["inputs"], inputs))))
                self._save()
            return change.id, change.outputs
        if old.get("protect"):
            raise RehearsalError(
                f"unable to replace resource {urn} as it is currently marked for protection "
                f"(changed: {', '.join(sorted(_changed_keys(old['inputs'], inputs)))})"
            )
        dbr = base["delete_before_replace"] or (provider.autonamed and bool(inputs.get("name")))
        if dbr:
            provider.delete(old)
            with self._lock:
                del self.current[urn]
                self._event("replace-delete", urn, "delete-before-replace")
                self._save()
            change = provider.create(base["name"], inputs)
        else:
            try:
                change = provider.create(base["name"], inputs)
            except PartialFailure:
                with self._lock:
                    self.pending.append(old)
                raise
            with self._lock:
                # Pulumi deletes the old side of a create-before-delete replacement at the end.
                self.pending.append(old)
        with self._lock:
            self.current[urn] = self._entry(base, change, inputs)
            self._event("create", urn, f"replacement ({'delete-before-replace' if dbr else 'create-before-delete'})")
            self._save()
        return change.id, change.outputs

    # -- deletion ---------------------------------------------------------------------------
    def _delete_entry(self, urn: str, entry: dict[str, Any], why: str) -> None:
        if entry.get("custom"):
            if entry.get("retain_on_delete"):
                self._event("retain", urn, f"{why}; retainOnDelete: left in place")
            else:
                self.providers[entry["type"]].delete(entry)
                self._event("delete", urn, why)
        self._save()

    def _finish(self) -> None:
        """After a successful program run: old sides of replacements, then resources no longer declared."""
        doomed: list[tuple[int, str, dict[str, Any], str]] = []
        for entry in self.pending:
            doomed.append((entry["seq"], self._urn_of(entry), entry, "replaced"))
        for urn, entry in list(self.current.items()):
            if urn not in self.registered:
                doomed.append((entry["seq"], urn, entry, "no longer declared"))
        for _, urn, entry, why in sorted(doomed, key=lambda d: -d[0]):
            if why != "replaced" and entry.get("protect") and entry.get("custom"):
                raise RehearsalError(
                    f"unable to delete resource {urn} as it is currently marked for protection "
                    "(it is no longer declared)"
                )
            self._delete_entry(urn, entry, why)
            if why == "replaced":
                self.pending.remove(entry)
            else:
                del self.current[urn]
            self._save()

    @staticmethod
    def _urn_of(entry: Mapping[str, Any]) -> str:
        return entry.get("urn", entry["name"])

    # -- operations -------------------------------------------------------------------------------
    def up(self, stack: str, config: Mapping[str, Any], secret_keys: tuple[str, ...] = ()) -> UpResult:
        """`pulumi up`: raises DeploymentFailed (naming the resource) when any step fails."""
        started = time.monotonic()
        state = self.load_state()
        self._reset_run()
        self._seq = state.get("seq", 0)
        self.current = {urn: {**e, "urn": urn} for urn, e in state["resources"].items()}
        self.pending = list(state.get("pending_deletes", []))
        self.outputs = dict(state.get("outputs", {}))
        full = {(k if ":" in k else f"catalogizer:{k}"): _as_config_value(v) for k, v in config.items()}
        pulumi.runtime.set_all_config(full, [k if ":" in k else f"catalogizer:{k}" for k in secret_keys])
        monitor = RehearsalMonitor(self)
        runtime_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(monitor.mocks, project="catalogizer", stack=stack, preview=False, monitor=monitor)
        # A failed earlier run leaves its unhandled exception and tasks in the runtime's RPC manager.
        runtime_settings.SETTINGS.rpc_manager.clear()
        runtime_settings.SETTINGS.outputs.clear()
        error: BaseException | None = None
        with _cwd(self.project_dir):
            try:
                _sync_await(run_pulumi_func(lambda: runpy.run_path(str(self.program), run_name="__main__")))
            except Exception as exc:
                error = exc
        if error is None and not self.failures:
            try:
                self.outputs = self._stack_outputs()
                self._finish()
            except Exception as exc:
                error = exc
        self._save()
        seconds = time.monotonic() - started
        if error is not None or self.failures:
            failures = self.failures or [f"{type(error).__name__}: {error}"]
            raise DeploymentFailed(
                "update failed:\n" + "\n".join(f"  - {f}" for f in failures), failures, list(self.events)
            )
        return UpResult(dict(self.outputs), list(self.events), seconds)

    @staticmethod
    def _stack_outputs() -> dict[str, Any]:
        root = runtime_settings.get_root_resource()
        outputs: dict[str, Any] = {}
        for name, value in getattr(root, "outputs", {}).items():
            outputs[name] = _sync_await(pulumi.Output.from_input(value).future())
        return outputs

    def destroy(self, exclude_protected: bool = True) -> DestroyResult:
        """`pulumi destroy --exclude-protected`: protected resources stay (in state and for real)."""
        state = self.load_state()
        self._reset_run()
        self._seq = state.get("seq", 0)
        self.current = {urn: {**e, "urn": urn} for urn, e in state["resources"].items()}
        self.pending = list(state.get("pending_deletes", []))
        protected = [u for u, e in self.current.items() if e.get("protect")]
        if protected and not exclude_protected:
            raise RehearsalError(
                "unable to delete protected resources: " + ", ".join(protected) + " (use exclude_protected)"
            )
        result = DestroyResult([], [], [])
        doomed = [(e["seq"], self._urn_of(e), e, True) for e in self.pending]
        doomed += [(e["seq"], u, e, False) for u, e in self.current.items()]
        for _, urn, entry, is_pending in sorted(doomed, key=lambda d: -d[0]):
            if not is_pending and entry.get("protect"):
                # Its parent components stay too, so the URNs stay stable for the next `up`.
                self._event("protect-keep", urn, "protected: not deleted")
                if entry.get("custom"):
                    result.kept_protected.append(entry["outputs"].get("name") or entry["name"])
                continue
            if not is_pending and not entry.get("custom") and self._has_protected_child(urn):
                continue
            if entry.get("custom") and entry.get("retain_on_delete"):
                result.retained.append(entry["name"])
            elif entry.get("custom"):
                result.deleted.append(entry["name"])
            self._delete_entry(urn, entry, "destroy")
            if is_pending:
                self.pending.remove(entry)
            else:
                del self.current[urn]
            self._save()
        self.outputs = {}
        self._save()
        result.events = list(self.events)
        return result

    def _has_protected_child(self, urn: str) -> bool:
        return any(e.get("parent") == urn and e.get("protect") for e in self.current.values())

    # -- inspection ----------------------------------------------------------------------------
    def docker_objects(self) -> Iterator[tuple[str, str]]:
        """(type, physical id) of every Docker object in the state, pending deletes included."""
        state = self.load_state()
        for entry in [*state["resources"].values(), *state.get("pending_deletes", [])]:
            if entry.get("type") in (ContainerProvider.token, NetworkProvider.token, VolumeProvider.token):
                yield entry["type"], entry["id"]
