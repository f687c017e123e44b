"""scripts/proxy_config.py on a real engine: nginx changes by reload, never by a new container.

nginx runs as the program declares it (`-c /etc/nginx/live/current/nginx.conf`, the config
volume read-only) in front of two stand-in API versions with their own version aliases; the
configuration comes from the program's own renderer (components.proxy.render_live_conf).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from certs import CertPair, write_self_signed
from client_loop import Loop
from docker.models.containers import Container
from docker.models.networks import Network
from docker_harness import DockerScope, healthcheck, wait_healthy
from images import tags
from ports import free_port
from services import SCRIPTS, api_env, hardened_kwargs, start_postgres, start_redis

from components.proxy import (
    CERT_FILE,
    HTTP_PORT,
    KEY_FILE,
    LIVE_CONF,
    LIVE_DIR,
    MAINTENANCE_FLAG,
    TEMP_DIR,
    render_live_conf,
)
from rendering.nginx import NginxSite

PROXY_CONFIG = SCRIPTS / "proxy_config.py"
V1, V2 = "api-v1aaaaaaaaaa", "api-v2bbbbbbbbbb"


@dataclass
class Proxied:
    scope: DockerScope
    network: Network
    volume: str
    certs: CertPair
    https_port: int
    settings_domain: str = "localhost"
    nginx: Container | None = None
    log: list[str] = field(default_factory=list)

    def env(self, alias: str, maintenance: bool = False, conf: str | None = None) -> dict[str, str]:
        # What components.proxy.nginx_site makes of the dev stack, on this test's port.
        site = NginxSite(
            server_name="localhost",
            tls_enabled=True,
            hsts=True,
            public_https_port=self.https_port,
            api_host=alias,
            cert_path=CERT_FILE,
            key_path=KEY_FILE,
            temp_dir=TEMP_DIR,
            maintenance_flag=MAINTENANCE_FLAG,
        )
        rendered, config_id = render_live_conf(site, self.certs.cert_pem)
        return {
            "NGINX_VOLUME": self.volume,
            "NGINX_IMAGE": tags.NGINX,
            "NGINX_CONTAINER": self.nginx.name if self.nginx else self.scope.name("nginx"),
            "NGINX_CONF": rendered if conf is None else conf,
            "NGINX_CONFIG_ID": config_id,
            "NGINX_HTTP_PORT": str(HTTP_PORT),
            "NGINX_SERVER_NAME": self.settings_domain,
            "MAINTENANCE": "true" if maintenance else "false",
            "PROXY_TIMEOUT": "20",
            "TLS_CERT_PEM": self.certs.cert_pem,
            "TLS_KEY_PEM": self.certs.key_pem,
        }

    def run(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        full = {"PATH": os.environ["PATH"], **env}
        return subprocess.run(
            [sys.executable, str(PROXY_CONFIG), *args], env=full, capture_output=True, text=True, timeout=180
        )

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        return https_get(self.https_port, path, self.certs.cert_pem)


def https_get(port: int, path: str, ca_pem: str) -> tuple[int, dict[str, str], str]:
    """GET over TLS to 127.0.0.1:port, verifying the stack's certificate for `localhost`."""
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        conn = http.client.HTTPConnection("localhost", port, timeout=10)
        conn.sock = tls  # already connected: http.client never opens a socket of its own
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()


@pytest.fixture
def proxied(docker_scope: DockerScope, tmp_path: Path) -> Iterator[Proxied]:
    network = docker_scope.network()
    pg_password, redis_password = "pg-" + "a" * 20, "rd-" + "b" * 20
    start_postgres(docker_scope, network, docker_scope.volume("pg-data"), pg_password)
    start_redis(docker_scope, network, redis_password)
    for image, alias in ((tags.API_V1, V1), (tags.API_V2, V2)):
        api = docker_scope.container(
            image,
            alias,
            network=network,
            aliases=["api", alias],
            environment=api_env(pg_password, redis_password),
            healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"]),
        )
        wait_healthy(api, timeout=90)
    certs = write_self_signed(tmp_path / "ssl")
    yield Proxied(docker_scope, network, docker_scope.volume("nginx-config").name, certs, free_port())


def start_nginx(p: Proxied) -> Container:
    """The container exactly as components/proxy.py declares it."""
    p.nginx = p.scope.container(
        tags.NGINX,
        "nginx",
        network=p.network,
        command=["nginx", "-c", LIVE_CONF, "-g", "daemon off;"],
        volumes={p.volume: {"bind": LIVE_DIR, "mode": "ro"}},
        healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{HTTP_PORT}/nginx-health"]),
        ports={443: p.https_port},
        **hardened_kwargs("nginx"),
    )
    wait_healthy(p.nginx, timeout=30)
    return p.nginx


def version_answer(p: Proxied) -> tuple[bool, str]:
    """/health through nginx: which API version answered it."""
    status, _, body = p.get("/health")
    return (True, json.loads(body)["version"]) if status == 200 else (False, str(status))


def test_first_apply_then_switch_versions_by_reload_without_a_failed_request(proxied: Proxied) -> None:
    first = proxied.run(proxied.env(V1))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["reloaded"] is False  # no container yet: it starts on this config
    nginx = start_nginx(proxied)
    started_at = nginx.attrs["State"]["StartedAt"]
    assert json.loads(proxied.get("/health")[2])["version"] == "v1"

    with Loop[str](lambda: version_answer(proxied)) as loop:
        time.sleep(2)
        switched = proxied.run(proxied.env(V2))
        done = time.monotonic()
        time.sleep(2)
    assert switched.returncode == 0, switched.stderr
    summary = json.loads(switched.stdout)
    assert summary["reloaded"] is True and summary["slot"] == "b"
    assert loop.failures == [] and len(loop.answers) > 20
    # While nginx reloads, its old workers finish what they accepted (v1, still healthy); once the
    # hook has returned, every request is answered by the new version.
    assert loop.answers[0][1] == "v1"
    after = [version for sent, version in loop.answers if sent > done]
    assert after and set(after) == {"v2"}, after
    nginx.reload()
    assert nginx.attrs["State"]["StartedAt"] == started_at  # the same container, reloaded
    print(f"[proxy] switch by reload: requests={len(loop.answers)} failed={len(loop.failures)} proxy_replaced=no")


def test_a_config_nginx_refuses_changes_nothing(proxied: Proxied) -> None:
    assert proxied.run(proxied.env(V1)).returncode == 0
    start_nginx(proxied)
    good = proxied.env(V2)
    broken = good["NGINX_CONF"].replace("ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.2 TLSv1.3 bogus;")
    refused = proxied.run({**good, "NGINX_CONF": broken})
    assert refused.returncode == 1
    assert "the new nginx configuration was refused, nothing changed" in refused.stderr
    assert "bogus" in refused.stderr  # nginx's own message
    assert json.loads(proxied.get("/health")[2])["version"] == "v1"
    assert proxied.certs.key_pem.strip().splitlines()[1] not in refused.stderr + refused.stdout


def test_maintenance_page_by_flag_while_health_keeps_answering(proxied: Proxied) -> None:
    assert proxied.run(proxied.env(V1)).returncode == 0
    start_nginx(proxied)
    flag = subprocess.run(
        [sys.executable, str(PROXY_CONFIG), "maintenance", "on"],
        env={"PATH": os.environ["PATH"], **proxied.env(V1)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert flag.returncode == 0, flag.stderr
    status, headers, body = proxied.get("/api/v1/media")
    retry_after = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    health = proxied.get("/health")[0]
    assert status == 503 and retry_after == "120" and "maintenance" in body.lower()
    assert health == 200
    print(f"[proxy] maintenance: status={status} retry_after={retry_after} health={health}")
    # The next apply with maintenance off (what follows a restore) takes the page down.
    assert proxied.run(proxied.env(V1, maintenance=False)).returncode == 0
    assert proxied.get("/api/v1/media")[0] != 503
