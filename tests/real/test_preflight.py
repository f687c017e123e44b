"""scripts/preflight.py on this host: each failure names the problem and the fix."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from certs import write_self_signed
from docker_harness import DockerScope
from images import tags
from ports import free_port
from services import SCRIPTS, run_hook

PREFLIGHT = SCRIPTS / "preflight.py"


def preflight_env(tmp_path: Path, ports: list[str], **extra: str) -> dict[str, str]:
    cert = write_self_signed(tmp_path / "ssl", valid_days=30)
    return {
        "PREFLIGHT_MIN_FREE_GB": "0.01",
        "BACKUP_DIR": str(tmp_path / "backups"),
        "STACK_LABEL": "cztest-preflight",
        "PREFLIGHT_PORTS": ",".join(ports),
        "TLS_CERT_FILE": str(cert.cert_file),
        **extra,
    }


def test_healthy_host_passes(tmp_path: Path) -> None:
    port = free_port()
    result = run_hook(PREFLIGHT, preflight_env(tmp_path, [f"0.0.0.0:{port}", f"127.0.0.1:{free_port()}"]))
    assert result.returncode == 0, result.stderr
    assert '"docker": "' in result.stdout and '"certificateNotAfter"' in result.stdout


def _host_platform() -> str:
    return subprocess.run(
        ["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_images_for_the_hosts_platform_pass_and_another_platform_is_refused(tmp_path: Path) -> None:
    host = _host_platform()
    ok = run_hook(PREFLIGHT, preflight_env(tmp_path, [], PREFLIGHT_PLATFORM=host))
    assert ok.returncode == 0, ok.stderr
    assert f'"platform": "{host}"' in ok.stdout
    other = "linux/arm64" if host != "linux/arm64" else "linux/amd64"
    refused = run_hook(PREFLIGHT, preflight_env(tmp_path, [], PREFLIGHT_PLATFORM=other))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"preflight failed: the Docker host is {host} but the images would be built for {other}; "
        f"`pulumi config set --path catalogizer:api.platform {host}`"
    )


def test_port_held_by_another_process_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_hook(PREFLIGHT, preflight_env(tmp_path, [f"0.0.0.0:{port}"]))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"preflight failed: host port {port} is held by another process (see `ss -ltnp 'sport = :{port}'`); "
        "stop it or change the port in the stack config"
    )


def test_port_held_by_this_stacks_own_container_is_fine(tmp_path: Path, docker_scope: DockerScope) -> None:
    port = free_port()
    docker_scope.container(tags.NGINX, "own", ports={80: port}, labels={"catalogizer.stack": "cztest-preflight"})
    result = run_hook(PREFLIGHT, preflight_env(tmp_path, [f"0.0.0.0:{port}"]))
    assert result.returncode == 0, result.stderr


def test_port_held_by_another_container(tmp_path: Path, docker_scope: DockerScope) -> None:
    port = free_port()
    other = docker_scope.container(tags.NGINX, "other", ports={80: port}, labels={"catalogizer.stack": "someone-else"})
    result = run_hook(PREFLIGHT, preflight_env(tmp_path, [f"0.0.0.0:{port}"]))
    assert result.returncode == 1
    assert f"host port {port} is held by container {other.name}, not this stack" in result.stderr


def test_disk_floor_above_free_space(tmp_path: Path) -> None:
    result = run_hook(PREFLIGHT, preflight_env(tmp_path, [], PREFLIGHT_MIN_FREE_GB="1000000"))
    assert result.returncode == 1
    assert "GB free on Docker's data root" in result.stderr and "below the 1e+06 GB floor" in result.stderr
    assert "catalogizer:preflight.minFreeGb" in result.stderr


def test_disk_measured_through_the_engine(tmp_path: Path, docker_engine: object) -> None:
    env = preflight_env(tmp_path, [], PREFLIGHT_DISK_PROBE="container", PREFLIGHT_PROBE_IMAGE=tags.POSTGRES)
    ok = run_hook(PREFLIGHT, env)
    assert ok.returncode == 0, ok.stderr
    refused = run_hook(PREFLIGHT, {**env, "PREFLIGHT_MIN_FREE_GB": "1000000"})
    assert refused.returncode == 1 and "Docker's data root" in refused.stderr


def test_expired_certificate(tmp_path: Path) -> None:
    expired = write_self_signed(tmp_path / "old", valid_days=-2, not_before_days_ago=40)
    result = run_hook(PREFLIGHT, preflight_env(tmp_path, [], TLS_CERT_FILE=str(expired.cert_file)))
    assert result.returncode == 1
    assert f"TLS certificate {expired.cert_file} expired on" in result.stderr and "renew it" in result.stderr


def test_missing_certificate(tmp_path: Path) -> None:
    result = run_hook(PREFLIGHT, preflight_env(tmp_path, [], TLS_CERT_FILE=str(tmp_path / "nope.pem")))
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_unreachable_docker_host(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = run_hook(PREFLIGHT, {**preflight_env(tmp_path, []), "DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    assert result.returncode == 1
    assert f"the Docker engine at tcp://127.0.0.1:{port} does not answer" in result.stderr
    assert "fix docker:host" in result.stderr
    assert time.monotonic() - started < 25


def test_acme_mode_reads_the_served_certificate_from_its_volume(tmp_path: Path, docker_scope: DockerScope) -> None:
    """tls.mode=acme: the certificate nginx serves (components/acme.py, current/fullchain.pem in
    the acme-certs volume); none before the first deploy, and an expired one reported, not refused."""
    missing = docker_scope.name("acme-certs-missing")
    env = {**preflight_env(tmp_path, []), "TLS_CERT_FILE": "", "PREFLIGHT_PROBE_IMAGE": tags.POSTGRES}
    result = run_hook(PREFLIGHT, {**env, "TLS_CERT_VOLUME": missing})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["certificateNotAfter"] == "none yet"
    # Looking did not create the volume the program will create.
    assert not docker_scope.client.volumes.list(filters={"name": missing})

    volume = docker_scope.volume("acme-certs").name
    for valid_days, expired in ((-2, True), (60, False)):
        cert = write_self_signed(tmp_path / f"served{valid_days}", valid_days=valid_days, not_before_days_ago=90)
        writer = docker_scope.container(
            tags.POSTGRES,
            f"certs-writer{valid_days}",
            volumes={volume: {"bind": "/certs", "mode": "rw"}},
            files={f"/certs/slot{valid_days}/fullchain.pem": cert.cert_pem},
            start=False,
        )
        # The sidecar's layout: `current` links to the slot nginx serves.
        code, out = docker_scope.run_once(
            tags.POSTGRES,
            ["ln", "-sfn", f"slot{valid_days}", "/certs/current"],
            volumes={volume: {"bind": "/certs", "mode": "rw"}},
        )
        assert code == 0, out
        docker_scope.remove(writer)
        result = run_hook(PREFLIGHT, {**env, "TLS_CERT_VOLUME": volume})
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["certificateExpired"] is expired
        assert summary["certificateNotAfter"].endswith("GMT")
