"""Issue 13 on a real engine: the ACME sidecar against Pebble, through the real nginx.

Pebble (Let's Encrypt's test ACME server, Debian's package, tests/images/pebble) runs in a
container on a network this test made, with alias `pebble`. Its VA validates HTTP-01 by
fetching http://<identifier>:<httpPort>/.well-known/acme-challenge/<token> (pebble va/va.go
fetchHTTP, the identifier resolved by the system resolver when -dnsserver is unset,
resolveIP): here `httpPort` is nginx's port 80 and the identifier is nginx's alias on the
network, so the challenge goes through nginx's own location, served from the shared webroot.

nginx, the proxy hook and the sidecar are as the program declares them (components/proxy.py,
scripts/proxy_config.py, components/acme.py with its hardening); a stand-in API on PostgreSQL
answers /health behind nginx.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from certs import write_self_signed
from client_loop import Loop
from docker.models.containers import Container
from docker_harness import DockerScope, healthcheck, wait_healthy
from images import tags
from pebble_server import DIRECTORY, PEBBLE_PORT, Pebble, start_pebble
from ports import free_port
from services import SCRIPTS, api_env, hardened_kwargs, start_postgres

from components.acme import CERTS_DIR, DATA_DIR, DOCKERFILE, WEBROOT, sidecar_env
from components.hook_support import PROJECT_DIR
from components.proxy import HTTP_PORT, LIVE_CONF, LIVE_DIR, TEMP_DIR, render_live_conf
from rendering.nginx import NginxSite
from settings import AcmeSettings, Settings

SIDECAR_TAG = "catalogizer-test/acme-sidecar:latest"
# nginx's alias on the test network: the name the certificate is for, and where Pebble's VA connects.
DOMAIN = "catalog.acme.test"
API_ALIAS = "api-acmeaaaaaaaa"


def build_sidecar(scope: DockerScope) -> None:
    """The sidecar as components/acme.py builds it (FROM the stack's nginx image); Docker's
    layer cache makes it near-instant after the first build."""
    scope.client.images.build(
        path=str(PROJECT_DIR),
        dockerfile=str(DOCKERFILE.relative_to(PROJECT_DIR)),
        buildargs={"BASE_IMAGE": tags.NGINX},
        tag=SIDECAR_TAG,
        rm=True,
    )


def https_get(port: int, path: str, ca_pem: str) -> tuple[int, str, bytes]:
    """GET https://DOMAIN{path} at 127.0.0.1:port, the chain verified against `ca_pem` only;
    returns the status, the body and the served leaf (DER)."""
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        leaf = tls.getpeercert(binary_form=True)
        assert leaf is not None
        conn = http.client.HTTPConnection(DOMAIN, port, timeout=10)
        conn.sock = tls  # already connected: http.client never opens a socket of its own
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(), leaf


@dataclass
class AcmeStack:
    scope: DockerScope
    https_port: int
    pebble: Pebble
    nginx: Container
    sidecar: Container
    bootstrap_cert: str

    def issue(self) -> subprocess.CompletedProcess[str]:
        """The deploy hook, as the acme-issue Command runs it."""
        env = {"PATH": os.environ["PATH"], "ACME_CONTAINER": self.sidecar.name, "ACME_TIMEOUT": "180"}
        return subprocess.run(
            [sys.executable, str(SCRIPTS / "acme_issue.py")], env=env, capture_output=True, text=True, timeout=240
        )

    def client(self, *args: str, environment: dict[str, str] | None = None) -> tuple[int, str]:
        return self.scope.exec(self.sidecar, ["python3", "/app/acme_client.py", *args], environment=environment)

    def client_shell(self, script: str) -> tuple[int, str]:
        return self.scope.exec(self.sidecar, ["sh", "-c", script])


def acme_settings(pebble_ca: str) -> Settings:
    """What sidecar_env reads of Settings (domain, tls.acme), for this test's Pebble."""
    acme = AcmeSettings(email="ops@example.com", server=DIRECTORY, ca_bundle_pem=pebble_ca)
    return cast(Settings, SimpleNamespace(domain=DOMAIN, tls=SimpleNamespace(acme=acme)))


@pytest.fixture
def acme_stack(docker_scope: DockerScope, tmp_path: Path) -> Iterator[AcmeStack]:
    scope = docker_scope
    build_sidecar(scope)
    network = scope.network()
    pg_password = "pg-" + "c" * 20
    start_postgres(scope, network, scope.volume("pg-data"), pg_password)
    api = scope.container(
        tags.API_V1,
        "api",
        network=network,
        aliases=["api", API_ALIAS],
        environment=api_env(pg_password, None),
        healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"]),
    )

    # Pebble's VA checks challenges on nginx's port 80, at the name nginx has on this network.
    pebble = start_pebble(scope, network, tmp_path / "pebble", HTTP_PORT)

    # The proxy hook's first apply with tls.mode=acme: the bootstrap pair is seeded into acme-certs.
    volumes = {role: scope.volume(role).name for role in ("nginx-config", "acme-data", "acme-certs", "acme-challenge")}
    bootstrap = write_self_signed(tmp_path / "bootstrap", DOMAIN, (DOMAIN,))
    https_port = free_port()
    site = NginxSite(
        server_name=DOMAIN,
        tls_enabled=True,
        hsts=True,
        public_https_port=https_port,
        api_host=API_ALIAS,
        cert_path=f"{CERTS_DIR}/current/fullchain.pem",
        key_path=f"{CERTS_DIR}/current/key.pem",
        acme_webroot=WEBROOT,
        temp_dir=TEMP_DIR,
    )
    conf, config_id = render_live_conf(site, bootstrap.cert_pem)
    applied = subprocess.run(
        [sys.executable, str(SCRIPTS / "proxy_config.py")],
        env={
            "PATH": os.environ["PATH"],
            "NGINX_VOLUME": volumes["nginx-config"],
            "NGINX_CERTS_VOLUME": volumes["acme-certs"],
            "NGINX_IMAGE": tags.NGINX,
            "NGINX_CONTAINER": scope.name("nginx"),
            "NGINX_CONF": conf,
            "NGINX_CONFIG_ID": config_id,
            "NGINX_HTTP_PORT": str(HTTP_PORT),
            "NGINX_SERVER_NAME": DOMAIN,
            "MAINTENANCE": "false",
            "PROXY_TIMEOUT": "20",
            "TLS_CERT_PEM": bootstrap.cert_pem,
            "TLS_KEY_PEM": bootstrap.key_pem,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr

    # nginx as components/proxy.py declares it with tls.mode=acme.
    nginx = scope.container(
        tags.NGINX,
        "nginx",
        network=network,
        aliases=[DOMAIN],
        command=["nginx", "-c", LIVE_CONF, "-g", "daemon off;"],
        volumes={
            volumes["nginx-config"]: {"bind": LIVE_DIR, "mode": "ro"},
            volumes["acme-certs"]: {"bind": CERTS_DIR, "mode": "ro"},
            volumes["acme-challenge"]: {"bind": WEBROOT, "mode": "ro"},
        },
        healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{HTTP_PORT}/nginx-health"]),
        ports={443: https_port},
        **hardened_kwargs("nginx"),
    )
    wait_healthy(nginx, timeout=30)
    wait_healthy(api, timeout=90)

    # The sidecar as components/acme.py declares it: nginx's namespaces, the three volumes, hardening.
    env = dict(item.split("=", 1) for item in sidecar_env(acme_settings(pebble.tls.cert_pem)))
    sidecar = scope.container(
        SIDECAR_TAG,
        "acme",
        network_mode=f"container:{nginx.id}",
        pid_mode=f"container:{nginx.id}",
        environment=env,
        volumes={
            volumes["acme-data"]: {"bind": DATA_DIR, "mode": "rw"},
            volumes["acme-certs"]: {"bind": CERTS_DIR, "mode": "rw"},
            volumes["acme-challenge"]: {"bind": WEBROOT, "mode": "rw"},
        },
        healthcheck=healthcheck(["CMD", "python3", "/app/acme_client.py", "--check"]),
        **hardened_kwargs("acme"),
    )
    yield AcmeStack(scope, https_port, pebble, nginx, sidecar, bootstrap.cert_pem)


def leaf_answer(port: int, ca_pem: str) -> tuple[bool, bytes | str]:
    """/health through nginx over TLS verified against `ca_pem`: the leaf that answered it."""
    status, _, leaf = https_get(port, "/health", ca_pem)
    return (True, leaf) if status == 200 else (False, str(status))


def env_of(container: Container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def served_leaf(stack: AcmeStack, ca_pem: str) -> bytes:
    status, body, leaf = https_get(stack.https_port, "/health", ca_pem)
    assert status == 200 and json.loads(body)["status"] == "healthy"
    return leaf


def test_issue_renew_and_fail_safe(acme_stack: AcmeStack) -> None:
    stack = acme_stack
    started_at = stack.nginx.attrs["State"]["StartedAt"]
    # Before issuance nginx serves the bootstrap pair.
    assert served_leaf(stack, stack.bootstrap_cert) == ssl.PEM_cert_to_DER_cert(stack.bootstrap_cert)

    # 1. Issuance through nginx's challenge path; the served chain verifies against Pebble's root.
    began = time.monotonic()
    issued = stack.issue()
    assert issued.returncode == 0, issued.stderr
    summary = json.loads(issued.stdout)
    assert summary["status"] == "ok" and summary["renewed"] is True and summary["asked"] is True
    root = stack.pebble.root()
    first = served_leaf(stack, root)  # raises unless the chain verifies against Pebble's root alone
    assert sha256(first) == summary["sha256"]
    print(f"[acme] issuance: {time.monotonic() - began:.1f}s, notAfter={summary['notAfter']}")
    # Not by the bootstrap pair: that one does not verify against Pebble's root.
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(stack.https_port, "/health", stack.bootstrap_cert)
    # Pebble's log shows its VA fetched the token from nginx under the certificate's name.
    assert f"http://{DOMAIN}:{HTTP_PORT}/.well-known/acme-challenge/" in stack.pebble.container.logs().decode()
    # The key stays in the sidecar's volumes, root's and 0600.
    code, modes = stack.client_shell(f"stat -c '%a %u' {CERTS_DIR}/current/key.pem")
    assert (code, modes.strip()) == (0, "600 0")
    # It did all that as root with no capability at all, no-new-privileges, a read-only root.
    code, status = stack.client_shell("grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status; touch /x")
    assert code != 0 and "Read-only file system" in status, status
    assert "CapEff:\t0000000000000000" in status and "CapPrm:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status

    # A second issue with nothing due changes nothing and asks no ACME server.
    again = stack.issue()
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["renewed"] is False and json.loads(again.stdout)["asked"] is False

    # 2. A forced renewal under a client loop: no failed request, the same nginx container.
    with Loop[bytes](lambda: leaf_answer(stack.https_port, root), max_seconds=90) as loop:
        time.sleep(2)
        code, out = stack.client("renew")
        time.sleep(2)
    assert code == 0, out
    renewed = json.loads(out.strip().splitlines()[-1])
    assert renewed["renewed"] is True and renewed["sha256"] != summary["sha256"]
    stack.nginx.reload()
    replaced = "no" if stack.nginx.attrs["State"]["StartedAt"] == started_at else "yes"
    print(f"[acme] renewal: requests={len(loop.answers)} failed={len(loop.failures)} proxy_replaced={replaced}")
    assert loop.failures == [] and len(loop.answers) > 40, loop.failures[:5]
    assert replaced == "no"
    assert sha256(served_leaf(stack, root)) == renewed["sha256"]
    # Both certificates answered during the loop: the old one until the reload, the new one after.
    assert {sha256(leaf) for _, leaf in loop.answers} == {summary["sha256"], renewed["sha256"]}

    # 2b. The scheduled loop renews on its own once a renewal is due (here: always, with a
    #     window of 100 years), by the same reload: a second sidecar as the program runs it, its
    #     first check at once and lego's random delay off.
    loop_env = {**env_of(stack.sidecar), "ACME_FIRST_CHECK_SECONDS": "0", "ACME_RANDOM_SLEEP": "false"}
    loop_env["ACME_RENEW_DAYS"] = "36500"
    with Loop[bytes](lambda: leaf_answer(stack.https_port, root), max_seconds=90) as scheduled:
        looper = stack.scope.container(
            SIDECAR_TAG,
            "acme-loop",
            network_mode=f"container:{stack.nginx.id}",
            pid_mode=f"container:{stack.nginx.id}",
            environment=loop_env,
            volumes=stack.sidecar.attrs["HostConfig"]["Binds"] or None,
            **hardened_kwargs("acme"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "scheduled check" not in looper.logs().decode():
            time.sleep(0.5)
        time.sleep(1)
    log = looper.logs().decode()
    assert "acme: scheduled check ok" in log, log
    looped = sha256(served_leaf(stack, root))
    assert looped not in (summary["sha256"], renewed["sha256"])
    assert scheduled.failures == [], scheduled.failures[:5]
    print(f"[acme] scheduled renewal: requests={len(scheduled.answers)} failed={len(scheduled.failures)}")
    stack.scope.remove(looper, stop_timeout=2)
    renewed["sha256"] = looped

    # 3. A challenge that fails: a name Pebble's VA cannot resolve. The reason is the ACME
    #    server's, the certificate serving is unchanged, and the sidecar turns unhealthy.
    code, out = stack.client("renew", environment={"ACME_DOMAIN": "nowhere.acme.test"})
    assert code == 1
    print(f"[acme] failed challenge: {out.strip().splitlines()[-1]}")
    assert "urn:ietf:params:acme:error:" in out, out
    assert 'error occurred while resolving URL "http://nowhere.acme.test:80/' in out, out
    assert sha256(served_leaf(stack, root)) == renewed["sha256"]
    assert stack.client("--check")[0] == 1

    # 4. Pebble unreachable. With nothing due the deploy hook asks no server and succeeds; a
    #    renewal (forced here) fails naming the server, and the certificate still serves.
    stack.pebble.container.stop(timeout=5)
    quiet = stack.issue()
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["asked"] is False
    assert json.loads(quiet.stdout)["sha256"] == renewed["sha256"]
    code, out = stack.client("renew")
    assert code == 1
    assert f"pebble:{PEBBLE_PORT}" in out, out
    assert sha256(served_leaf(stack, root)) == renewed["sha256"]
    # Without a certificate from this server (as on a first deploy, or a new acmeServer), the
    # deploy hook must ask, and fails with the server's reason; nginx keeps what it served.
    code, _ = stack.client_shell(f"rm -r {DATA_DIR}/*/certificates")
    assert code == 0
    failed = stack.issue()
    assert failed.returncode == 1
    print(f"[acme] pebble unreachable: {failed.stderr.strip().splitlines()[-2]}")
    assert failed.stderr.startswith("ACME certificate: the ACME server did not issue a certificate")
    assert f"pebble:{PEBBLE_PORT}" in failed.stderr
    assert "The certificate nginx served before still serves." in failed.stderr
    assert sha256(served_leaf(stack, root)) == renewed["sha256"]
    check_code, check_out = stack.client("--check")
    assert check_code == 1 and "last ACME attempt failed" in check_out
