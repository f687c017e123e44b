"""Shared by the alerting tests: the program's rendered files, and its containers run by the harness.

The files and container settings come from the unmodified program run under Pulumi's mocks
(tests/program.py): what is checked and started here is what `pulumi up` would upload.
Only images (the locally built ones), names, volumes and published ports (free 127.0.0.1
ports) are swapped for the test's own.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from typing import Any

from docker.models.containers import Container
from docker.models.networks import Network
from docker_harness import DockerScope
from images import tags
from program import Deployment, Registered
from services import SCRIPTS

from components.postgres import postgres_uid
from components.proxy import LIVE_DIR
from rendering.alerts import RuleParams, alert_rules, render_alert_rules

NS = 1_000_000_000
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
    if inputs.get("user"):
        # The declared uid belongs to the declared image; PostgreSQL's differs between the
        # official alpine image and the Debian-based test image (components/postgres.py).
        kwargs["user"] = f"{postgres_uid(image)}:0" if role == "postgres" else inputs["user"]
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
    # Read-only services get their files through a never-started carrier (issue 10); here the
    # files go straight into the container, whose config folder is then a writable test volume.
    for carrier in deployment.containers(f"{role}-config"):
        files.update(uploads(carrier))
    if files:
        container.put_archive("/", upload_tar(files))
    container.start()
    container.reload()
    return container


def apply_proxy_config(scope: DockerScope, deployment: Deployment, image: str) -> None:
    """Runs the program's proxy-config hook as declared, into the volume `launch` gives nginx.

    nginx carries no configuration of its own: the hook stages it into the nginx-config volume
    (the nginx container's mount number 1) before the container starts.
    """
    hook = deployment.named("proxy-config")
    (live,) = [n for n, m in enumerate(deployment.container("nginx").inputs["mounts"]) if m["target"] == LIVE_DIR]
    env = {
        **hook.inputs["environment"],
        "NGINX_VOLUME": scope.volume(f"nginx-vol{live}").name,
        "NGINX_IMAGE": image,
        "NGINX_CONTAINER": scope.name("nginx"),
        "PATH": os.environ["PATH"],
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "proxy_config.py")], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr


SCRAPE = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9188/metrics').read().decode(), end='')"


def scheduler_metrics(scope: DockerScope, scheduler: Container) -> str:
    """The scheduler's /metrics page, fetched inside its container (no published port)."""
    code, page = scope.exec(scheduler, ["python3", "-c", SCRAPE])
    assert code == 0, page
    return page


def page_series(page: str, labels: str = 'job="backup-scheduler",instance="s"') -> dict[str, str]:
    """A scraped page as promtool input series (Prometheus adds job and instance when it scrapes)."""
    series = {}
    for line in page.splitlines():
        if not line or line.startswith("#"):
            continue
        sample, value = line.rsplit(" ", 1)
        name, _, inner = sample.partition("{")
        inner = inner.rstrip("}")
        series[f"{name}{{{labels}{',' + inner if inner else ''}}}"] = f"{value}x20"
    return series


def promtool_alerts_on(scope: DockerScope, page: str, firing: tuple[str, ...], quiet: tuple[str, ...] = ()) -> None:
    """The program's alert rules evaluated by promtool on a real scraped page: each of `firing`
    fires with job/instance labels, severity and annotations as rendered; each of `quiet` does not."""
    rules = {r["alert"]: r for r in alert_rules(RuleParams())}
    checks: list[tuple[str, list[dict[str, Any]]]] = [(name, []) for name in quiet]
    for name in firing:
        labels = {"job": "backup-scheduler", "instance": "s", "severity": rules[name]["labels"]["severity"]}
        annotations = {
            key: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m, labels=labels: labels.get(m.group(1), ""), value)
            for key, value in rules[name]["annotations"].items()
        }
        checks.append((name, [{"exp_labels": labels, "exp_annotations": annotations}]))
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in page_series(page).items()],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": name, "exp_alerts": alerts} for name, alerts in checks
                ],
            }
        ],
    }
    files = {"/tests/rules.yml": render_alert_rules(RuleParams()), "/tests/tests.yml": json.dumps(tests)}
    code, out = scope.run_once(
        tags.MONITORING["prometheus"],
        ["test", "rules", "/tests/tests.yml"],
        entrypoint=["promtool"],
        files=files,
        user="root",
    )
    assert code == 0 and "SUCCESS" in out, out
