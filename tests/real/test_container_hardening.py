"""Issue 10 outcome 3 on a real engine: the services run, and work, with exactly the controls
components/container_defaults.HARDENING gives them, their files delivered the way the program
delivers them (a never-started carrier container receives an archive at "/", as the provider
uploads, into a volume the service mounts read-only; nginx's from the proxy-config hook).

Checked from inside each container: NoNewPrivs, the effective capability set, a read-only root,
the user, the CPU quota and the nproc limit.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import ssl
from collections.abc import Mapping
from typing import Any

from docker.models.containers import Container
from docker_harness import DockerScope, healthcheck, http_request, wait_healthy
from images import tags
from services import PG_COMMAND, PG_DATA_DIR, PG_DB, PG_PGDATA, PG_USER, SCRIPTS, api_env, hardened_kwargs, run_hook

from components.container_defaults import HARDENING
from components.postgres import CONFIG_DIR as PG_CONFIG_DIR
from components.postgres import INITDB_ARGS, PASSWORD_FILE, postgres_uid
from components.proxy import CERT_FILE, HTTP_PORT, KEY_FILE, LIVE_CONF, LIVE_DIR, MAINTENANCE_FLAG, render_live_conf
from components.proxy import TEMP_DIR as NGINX_TEMP_DIR
from rendering.nginx import NginxSite
from rendering.redis import CONF_DIR as REDIS_CONF_DIR
from rendering.redis import CONF_PATH as REDIS_CONF_PATH
from rendering.redis import render_redis_conf

# Bit numbers in capabilities(7).
CAPABILITY_BITS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "SETGID": 6, "SETUID": 7, "NET_BIND_SERVICE": 10}


def _docker_kwargs(role: str, cpus: str) -> dict[str, Any]:
    return hardened_kwargs(role, cpus)


def _carrier(scope: DockerScope, image: str, role: str, directory: str, files: Mapping[str, Any]) -> str:
    volume = scope.volume(f"{role}-config")
    # Created, never started; `files` are put at "/" like the provider's CopyToContainer.
    scope.container(
        image,
        f"{role}-config",
        start=False,
        network_mode="none",
        command=["true"],
        files=files,
        volumes={volume.name: {"bind": directory, "mode": "rw"}},
    )
    return volume.name


def _assert_hardened(scope: DockerScope, container: Container, role: str) -> None:
    spec = HARDENING[role]
    rc, status = scope.exec(container, ["cat", "/proc/1/status"])
    assert rc == 0, status
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["NoNewPrivs"].strip() == "1", role
    effective = int(fields["CapEff"].strip(), 16)
    allowed = sum(1 << CAPABILITY_BITS[c] for c in spec.cap_add)
    assert effective & ~allowed == 0, f"{role} has capabilities {effective:#x} beyond {spec.cap_add}"
    rc, limits = scope.exec(container, ["cat", "/proc/1/limits"])
    assert f"Max processes             {spec.nproc}" in " ".join(limits.split("\n")) or any(
        line.startswith("Max processes") and line.split()[2] == str(spec.nproc) for line in limits.splitlines()
    ), limits
    container.reload()
    host = container.attrs["HostConfig"]
    assert host["NanoCpus"] > 0 and host["SecurityOpt"] == ["no-new-privileges:true"], role
    if spec.read_only:
        rc, out = scope.exec(container, ["sh", "-c", "echo x > /hardening-probe"])
        assert rc != 0 and "Read-only file system" in out, (role, out)
    if spec.user:
        rc, out = scope.exec(container, ["stat", "-c", "%u", "/proc/1"])
        assert out.strip() == spec.user.split(":")[0], (role, out)


def test_nginx_redis_postgres_and_api_work_hardened(docker_scope: DockerScope, tmp_path) -> None:
    from certs import write_self_signed

    net = docker_scope.network()
    # Redis: read-only root, uid 999 with group 0 reading the root-owned 0640 config.
    redis_password = secrets.token_hex(16)
    redis_conf = _carrier(
        docker_scope,
        tags.REDIS,
        "redis",
        REDIS_CONF_DIR,
        {REDIS_CONF_PATH: (render_redis_conf(redis_password, 256), 0o640)},
    )
    redis = docker_scope.container(
        tags.REDIS,
        "redis",
        network=net,
        aliases=["redis"],
        command=["redis-server", REDIS_CONF_PATH],
        environment={"REDISCLI_AUTH": redis_password},
        healthcheck=healthcheck(["CMD-SHELL", "redis-cli ping | grep -q PONG"]),
        volumes={
            docker_scope.volume("redis-data").name: {"bind": "/data", "mode": "rw"},
            redis_conf: {"bind": REDIS_CONF_DIR, "mode": "ro"},
        },
        **_docker_kwargs("redis", "1"),
    )
    # PostgreSQL: read-only root, its uid with group 0, password file from the carrier.
    pg_password = secrets.token_hex(16)
    pg_conf = _carrier(docker_scope, tags.POSTGRES, "postgres", PG_CONFIG_DIR, {PASSWORD_FILE: (pg_password, 0o640)})
    postgres = docker_scope.container(
        tags.POSTGRES,
        "postgres",
        network=net,
        aliases=["postgres"],
        command=PG_COMMAND,
        environment={
            "POSTGRES_USER": PG_USER,
            "POSTGRES_PASSWORD_FILE": PASSWORD_FILE,
            "POSTGRES_DB": PG_DB,
            "PGDATA": PG_PGDATA,
            "POSTGRES_INITDB_ARGS": INITDB_ARGS,
        },
        user=f"{postgres_uid(tags.POSTGRES)}:0",
        healthcheck=healthcheck(["CMD", "pg_isready", "-h", "127.0.0.1", "-U", PG_USER, "-d", PG_DB]),
        volumes={
            docker_scope.volume("pg-data").name: {"bind": PG_DATA_DIR, "mode": "rw"},
            pg_conf: {"bind": PG_CONFIG_DIR, "mode": "ro"},
        },
        shm_size="256m",
        **_docker_kwargs("postgres", "1"),
    )
    wait_healthy(redis, timeout=60)
    wait_healthy(postgres, timeout=90)
    # The API (stand-in, uid 1001): every capability dropped, root filesystem writable.
    api = docker_scope.container(
        tags.API_V1,
        "api",
        network=net,
        aliases=["api"],
        environment=api_env(pg_password, redis_password),
        healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"]),
        **_docker_kwargs("api", "1"),
    )
    # nginx: read-only root, 4 capabilities, its configuration, certificate and key staged by the
    # program's proxy-config hook into the volume it mounts read-only (components/proxy.py).
    certs = write_self_signed(tmp_path / "certs")
    site = NginxSite(
        server_name="localhost",
        tls_enabled=True,
        hsts=True,
        public_https_port=443,
        api_host="api",
        cert_path=CERT_FILE,
        key_path=KEY_FILE,
        temp_dir=NGINX_TEMP_DIR,
        maintenance_flag=MAINTENANCE_FLAG,
    )
    conf, config_id = render_live_conf(site, certs.cert_pem)
    hook_env = {
        "NGINX_VOLUME": docker_scope.volume("nginx-config").name,
        "NGINX_IMAGE": tags.NGINX,
        "NGINX_CONTAINER": docker_scope.name("nginx"),
        "NGINX_CONF": conf,
        "NGINX_CONFIG_ID": config_id,
        "NGINX_HTTP_PORT": str(HTTP_PORT),
        "NGINX_SERVER_NAME": "localhost",
        "MAINTENANCE": "false",
        "PROXY_TIMEOUT": "60",
        "TLS_CERT_PEM": certs.cert_pem,
        "TLS_KEY_PEM": certs.key_pem,
    }
    staged = run_hook(SCRIPTS / "proxy_config.py", hook_env)
    assert staged.returncode == 0, staged.stderr
    nginx = docker_scope.container(
        tags.NGINX,
        "nginx",
        network=net,
        command=["nginx", "-c", LIVE_CONF, "-g", "daemon off;"],
        ports={80: None, 443: None},
        healthcheck=healthcheck(["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/nginx-health"]),
        volumes={hook_env["NGINX_VOLUME"]: {"bind": LIVE_DIR, "mode": "ro"}},
        **_docker_kwargs("nginx", "0.5"),
    )
    wait_healthy(api, timeout=90)
    wait_healthy(nginx, timeout=60)
    # Working end to end through the hardened proxy (plain-HTTP health passthrough).
    status, _, body = http_request("GET", "/health", docker_scope.host_port(nginx, 80), headers={"Host": "localhost"})
    assert status == 200 and b"healthy" in body
    for container, role in ((redis, "redis"), (postgres, "postgres"), (api, "api"), (nginx, "nginx")):
        _assert_hardened(docker_scope, container, role)
    # The workers really run unprivileged, and the key stayed root-only.
    # The key stayed root-only (0600 in a 0700 folder of the read-only volume), and the workers
    # really run unprivileged.
    key = f"{LIVE_DIR}/current/{KEY_FILE}"
    rc, out = docker_scope.exec(
        nginx, ["sh", "-c", f"stat -L -c '%a %u' {key} $(dirname {key}); ps -o user= -C nginx | sort -u"]
    )
    assert rc == 0 and out.split()[0:4] == ["600", "0", "700", "0"], out
    # The hook reloads the hardened nginx (SIGHUP to its root master, which re-reads the key) and
    # turns the maintenance page on: the unprivileged workers see the flag in the volume.
    reloaded = run_hook(SCRIPTS / "proxy_config.py", {**hook_env, "MAINTENANCE": "true"})
    assert reloaded.returncode == 0, reloaded.stderr
    assert json.loads(reloaded.stdout)["reloaded"] is True
    status, body = _https_get(docker_scope.host_port(nginx, 443), "/api/v1/media", certs.cert_pem)
    assert status == 503 and "maintenance" in body.lower(), (status, body[:200])


def _https_get(port: int, path: str, ca_pem: str) -> tuple[int, str]:
    """GET over TLS with SNI and Host `localhost`, verifying the test certificate."""
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        conn = http.client.HTTPConnection("localhost", port, timeout=10)
        conn.sock = tls  # already connected
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
