"""The production-shaped rehearsal: Pulumi.prod.yaml's settings, carried out for real.

Everything the production stack turns on runs here: the backup scheduler (a BuildKit build, bind
`volumes`), monitoring (Debian's real Prometheus; a documented Grafana stand-in, see
tests/images/grafana-standin/Dockerfile) and TLS from certificate files. Only what cannot be
production on a test machine is overridden: the locally built images, the stand-in API checkout,
free loopback ports, temporary folders, a test certificate, small memory limits and a short
container wait. Fresh up -> update (new API build) -> destroy.
"""

from __future__ import annotations

import base64
import http.client
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from certs import write_self_signed
from docker_harness import DockerScope, docker_client
from images import tags
from images.ensure import ensure_images
from ports import free_port
from rehearsal_stack import Stack, say

DOMAIN = "catalogizer.example.com"
CONTAINER = "docker:index/container:Container"
EXPORTERS = ("postgres", "redis", "nginx", "blackbox")


@pytest.fixture(scope="module")
def production(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    client = docker_client()
    ensure_images()
    with DockerScope(client, test_name=request.node.nodeid) as scope:
        root = tmp_path_factory.mktemp("production")
        stack = Stack(scope, root, request.config, stack="prod")
        stack.public_name = DOMAIN
        cert = write_self_signed(root / "ssl", common_name=DOMAIN, dns_names=(DOMAIN, "localhost"), valid_days=90)
        stack.overrides = {
            "api": {"source": str(stack.checkout), "mediaRoot": str(stack.media), "memoryMb": 256},
            "postgres": {"image": tags.POSTGRES, "memoryMb": 256},
            "redis": {"image": tags.REDIS, "memoryMb": 64},
            "proxy": {"image": tags.NGINX, "httpPort": stack.http_port, "httpsPort": stack.https_port},
            "tls": {"certFile": str(cert.cert_file), "keyFile": str(cert.key_file)},
            "monitoring": {
                "prometheusImage": tags.MONITORING["prometheus"],
                "grafanaImage": tags.GRAFANA_STANDIN,
                "alertmanagerImage": tags.MONITORING["alertmanager"],
                "postgresExporterImage": tags.MONITORING["postgres-exporter"],
                "redisExporterImage": tags.MONITORING["redis-exporter"],
                "nginxExporterImage": tags.MONITORING["nginx-exporter"],
                "blackboxExporterImage": tags.MONITORING["blackbox-exporter"],
                "prometheusPort": free_port(),
                "grafanaPort": free_port(),
                "alertmanagerPort": free_port(),
            },
            "backup": {"dir": str(stack.backups)},
            "health": {"timeoutSeconds": 30, "intervalSeconds": 1, "waitTimeoutSeconds": 60},
        }
        try:
            yield stack
        finally:
            if not stack.results.get("production"):
                say(request.config, "[rehearsal] production failed; the engine's last steps:")
                for line in stack.log_lines[-120:]:
                    say(request.config, "  " + line)
            problems = stack.remove_everything()
            if problems:
                sys.stderr.write("[rehearsal] production teardown: " + "; ".join(problems) + "\n")
    client.close()


def _local_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _api_targets_up(port: int, expected: int, timeout: float = 60.0) -> int:
    """Prometheus's own view: how many API replicas it scrapes with health `up`."""
    deadline = time.monotonic() + timeout
    up = 0
    while time.monotonic() < deadline:
        status, body = _local_get(port, "/api/v1/targets")
        if status == 200:
            targets = json.loads(body)["data"]["activeTargets"]
            up = sum(1 for t in targets if t.get("health") == "up" and "8080" in t.get("scrapeUrl", ""))
            if up >= expected:
                return up
        time.sleep(1)
    return up


def _env(container: Any) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def test_production_shaped(production: Stack) -> None:
    stack = production
    client = stack.scope.client
    started = time.monotonic()
    stack.set_version("prod-v1")
    fresh = stack.up()
    out = stack.outputs
    containers = out["containers"]
    core = {"postgres", "redis", "nginx", "api", "backup-scheduler"}
    monitoring_roles = {"prometheus", "grafana", "alertmanager", *(f"{e}-exporter" for e in EXPORTERS)}
    assert set(containers) == core | monitoring_roles, containers
    names = [v for v in containers.values() if isinstance(v, str)] + list(containers["api"])
    for name in names:
        container = client.containers.get(name)
        assert container.attrs["State"]["Health"]["Status"] == "healthy", name

    # TLS from the certificate files: nginx serves exactly that certificate.
    assert out["tlsCertificate"].strip() == (stack.root / "ssl" / "cert.pem").read_text().strip()
    assert stack.served_version() == "prod-v1"
    assert out["health"]["status"] == "healthy"

    # Prometheus (real) scrapes every API replica; the Grafana stand-in loaded the uploaded datasource.
    monitoring = stack.overrides["monitoring"]
    assert _local_get(monitoring["prometheusPort"], "/-/ready")[0] == 200
    replicas = len(containers["api"])
    assert _api_targets_up(monitoring["prometheusPort"], replicas) >= replicas
    grafana = next(
        c
        for c in client.containers.list(filters={"name": stack.prefix})
        if c.labels.get("catalogizer.role") == "grafana"
    )
    # Issue 10: the password reaches Grafana as a file (__FILE), not in its environment.
    assert "GF_SECURITY_ADMIN_PASSWORD" not in _env(grafana)
    password = out["grafanaPassword"]
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}
    status, body = _local_get(monitoring["grafanaPort"], "/api/datasources", auth)
    assert status == 200 and json.loads(body)[0]["url"] == "http://prometheus:9090", body

    # The backup scheduler writes into the bind-mounted backup folder (`volumes`).
    scheduler = next(
        c
        for c in client.containers.list(filters={"name": stack.prefix})
        if c.labels.get("catalogizer.role") == "backup-scheduler"
    )
    binds = {m["Destination"]: m for m in scheduler.attrs["Mounts"] if m["Type"] == "bind"}
    assert binds["/backups"]["Source"] == str(stack.backups) and binds["/etc/localtime"]["RW"] is False
    fresh_s = time.monotonic() - started

    # Nothing changed, nothing happens: no rebuild of the scheduler image (hooks write
    # scripts/__pycache__ into its build context), no update, no replacement.
    noop = stack.up()
    assert noop.changes() == [], [(e.action, e.name, e.detail) for e in noop.changes()]

    # An update: a new API build replaces the API containers; nothing else changes.
    step = time.monotonic()
    stack.set_version("prod-v2")
    update = stack.up()
    assert stack.served_version() == "prod-v2"
    # Of the containers only the API ones are replaced (the hook Commands re-run by design).
    replaced = sorted(
        {e.name for e in update.events if e.action == "create" and "replacement" in e.detail and CONTAINER in e.urn}
    )
    assert len(replaced) == len(containers["api"]) and all("-api-" in n for n in replaced), replaced
    updated = [e.name for e in update.events if e.action == "update" and CONTAINER in e.urn]
    assert updated == [], updated
    update_s = time.monotonic() - step

    # Destroy keeps exactly the protected resources.
    destroyed = stack.rehearsal.destroy()
    assert client.containers.list(all=True, filters={"label": f"catalogizer.stack={stack.prefix}"}) == []
    kept = sorted(v for v in destroyed.kept_protected if v.startswith(stack.prefix))
    assert f"{stack.prefix}-postgres-data" in kept, kept
    stack.results["production"] = True
    say(
        stack.pytest_config,
        f"[rehearsal] production: {time.monotonic() - started:.1f}s, passed (fresh up {fresh_s:.0f}s with "
        f"{len(fresh.actions('create'))} creates, {replicas} API replica(s) scraped by Prometheus, Grafana "
        f"stand-in provisioned, Alertmanager and {len(EXPORTERS)} exporters healthy, scheduler and files TLS; "
        f"no-op up {len(noop.changes())} changes; "
        f"update {update_s:.0f}s replaced {len(replaced)} API container(s); destroy kept {', '.join(kept)})",
    )
