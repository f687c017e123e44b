"""scripts/preflight.py without a Docker engine: version floor, disk floors, port owners, certificate."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from certs import write_self_signed
from fake_docker import FakeDocker

from scripts import preflight

GB = 1024**3
NOT_AFTER = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} GMT"  # openssl's date, without "notAfter="


def test_constants() -> None:
    assert preflight.MIN_DOCKER == (20, 10)
    assert preflight.GB == 1073741824


@pytest.mark.parametrize("version", ["20.10.0", "20.10", "24.0.7", "27.1.1-ce", "100.0"])
def test_docker_version_accepted(fake_docker: FakeDocker, version: str) -> None:
    fake_docker.set(VERSION=version)
    assert preflight.docker_version() == version
    assert fake_docker.argvs() == [["version", "--format", "{{.Server.Version}}"]]


@pytest.mark.parametrize("version", ["20.9.1", "19.03.15", "1.13"])
def test_docker_version_too_old(fake_docker: FakeDocker, version: str) -> None:
    fake_docker.set(VERSION=version)
    with pytest.raises(preflight.HookError) as caught:
        preflight.docker_version()
    assert str(caught.value) == f"Docker {version} is too old; upgrade the engine to 20.10 or newer"


def test_docker_not_answering(fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    fake_docker.set(VERSION_EXIT="1", VERSION_ERR="Client: ok\nCannot connect to the Docker daemon\n")
    with pytest.raises(preflight.HookError) as caught:
        preflight.docker_version()
    assert str(caught.value) == (
        "the Docker engine at the local socket does not answer (Cannot connect to the Docker daemon); "
        "start it or fix docker:host"
    )
    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@docker-host")
    with pytest.raises(preflight.HookError, match="the Docker engine at ssh://deploy@docker-host does not answer"):
        preflight.docker_version()


def test_docker_timing_out(fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(args: list[str], *, timeout: float) -> None:
        assert timeout == 20
        raise subprocess.TimeoutExpired(["docker", *args], timeout)

    monkeypatch.setattr(preflight, "docker", slow)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(preflight.HookError) as caught:
        preflight.docker_version()
    assert (
        str(caught.value)
        == "the Docker engine at the local socket does not answer (timed out); start it or fix docker:host"
    )


@pytest.mark.parametrize(
    ("host", "local"),
    [(None, True), ("", True), ("unix:///var/run/docker.sock", True), ("ssh://h", False), ("tcp://h:2376", False)],
)
def test_docker_is_local(monkeypatch: pytest.MonkeyPatch, host: str | None, local: bool) -> None:
    if host is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", host)
    assert preflight.docker_is_local() is local


def test_free_gb_local_measures_the_nearest_existing_folder(tmp_path: Path) -> None:
    expected = shutil.disk_usage(tmp_path).free / GB
    assert preflight.free_gb_local(tmp_path / "not" / "yet") == pytest.approx(expected, abs=0.5)


def test_free_gb_on_engine(fake_docker: FakeDocker) -> None:
    fake_docker.set(
        DF="Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 50 20971520 50% /probe\n"
    )
    assert preflight.free_gb_on_engine("/var/lib/docker", "busybox:1") == 20.0
    assert fake_docker.argvs() == [
        ["run", "--rm", "-v", "/var/lib/docker:/probe:ro", "--", "busybox:1", "df", "-Pk", "/probe"]
    ]
    fake_docker.set(RUN_EXIT="125", RUN_ERR="no such image\n")
    with pytest.raises(preflight.HookError) as caught:
        preflight.free_gb_on_engine("/var/lib/docker", "busybox:1")
    assert str(caught.value) == "cannot measure free space of /var/lib/docker on the Docker host: no such image"


@pytest.fixture
def disks(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """Free GB by path, for the local measurement."""
    free: dict[str, float] = {}
    monkeypatch.setattr(preflight, "free_gb_local", lambda path: free[str(path)])
    return free


def test_check_disk_local(fake_docker: FakeDocker, disks: dict[str, float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("PREFLIGHT_DISK_PROBE", raising=False)
    fake_docker.set(DOCKER_ROOT="/srv/docker")
    disks.update({"/srv/docker": 12.34, "/b": 10.26})
    found = preflight.check_disk(10, Path("/b"), None)
    assert found == {"dockerRoot": 12.3, "backupDir": 10.3}
    assert [type(v) for v in found.values()] == [float, float]
    assert fake_docker.argvs() == [["info", "--format", "{{.DockerRootDir}}"]]


def test_check_disk_defaults_the_docker_root(
    fake_docker: FakeDocker, disks: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    disks.update({"/var/lib/docker": 50.0, "/b": 50.0})
    assert preflight.check_disk(10, Path("/b"), None) == {"dockerRoot": 50.0, "backupDir": 50.0}


@pytest.mark.parametrize(
    ("free", "where"),
    [
        ({"/srv/docker": 9.96, "/b": 50.0}, "Docker's data root /srv/docker"),
        ({"/srv/docker": 50.0, "/b": 2.0}, "the backup folder /b"),
    ],
)
def test_check_disk_below_the_floor(
    fake_docker: FakeDocker,
    disks: dict[str, float],
    monkeypatch: pytest.MonkeyPatch,
    free: dict[str, float],
    where: str,
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    fake_docker.set(DOCKER_ROOT="/srv/docker")
    disks.update(free)
    with pytest.raises(preflight.HookError) as caught:
        preflight.check_disk(10.5, Path("/b"), None)
    low = min(free.values())
    assert str(caught.value) == (
        f"only {round(low, 1):.1f} GB free on {where}, below the 10.5 GB floor; "
        "free space (docker image prune, old backups) or lower catalogizer:preflight.minFreeGb"
    )


def test_check_disk_remote_measures_through_a_container(
    fake_docker: FakeDocker, disks: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@docker-host")
    fake_docker.set(DOCKER_ROOT="/var/lib/docker", DF="header\n/dev/sda1 1 1 31457280 1% /probe\n")
    disks["/b"] = 40.0
    assert preflight.check_disk(10, Path("/b"), "busybox:1") == {"dockerRoot": 30.0, "backupDir": 40.0}
    with pytest.raises(preflight.HookError) as caught:
        preflight.check_disk(10, Path("/b"), None)
    assert str(caught.value) == "PREFLIGHT_PROBE_IMAGE is required to measure a remote Docker host's disk"


def test_check_disk_probe_container_on_request(
    fake_docker: FakeDocker, disks: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("PREFLIGHT_DISK_PROBE", "container")
    fake_docker.set(DOCKER_ROOT="/var/lib/docker", DF="header\n/dev/sda1 1 1 31457280 1% /probe\n")
    disks["/b"] = 40.0
    assert preflight.check_disk(10, Path("/b"), "busybox:1")["dockerRoot"] == 30.0
    assert fake_docker.argvs()[-1][0] == "run"


def test_ports_of_own_containers(fake_docker: FakeDocker) -> None:
    fake_docker.set(
        PS_PORTS="0.0.0.0:80->80/tcp, :::80->80/tcp, 0.0.0.0:443->443/tcp\n127.0.0.1:9090->9090/tcp\n5432/tcp\n\n"
    )
    assert preflight.ports_of_own_containers("catalogizer") == {80, 443, 9090}
    assert fake_docker.argvs() == [["ps", "--filter", "label=catalogizer.stack=catalogizer", "--format", "{{.Ports}}"]]


def test_port_holder_container(fake_docker: FakeDocker) -> None:
    fake_docker.set(PS_PUBLISH_80="other-nginx\nsecond\n")
    assert preflight.port_holder_container(80) == "other-nginx"
    assert preflight.port_holder_container(81) is None
    assert fake_docker.argvs()[0] == ["ps", "--filter", "publish=80", "--format", "{{.Names}}"]


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_check_ports_free_own_and_taken(
    fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, listener: int
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    free = _free_port()
    # A port this stack already holds is fine even though it is bound.
    fake_docker.set(PS_PORTS=f"127.0.0.1:{listener}->80/tcp\n")
    spec = f" 127.0.0.1:{free}, 127.0.0.1:{listener} ,"
    assert preflight.check_ports(spec, "catalogizer") == [f"127.0.0.1:{free}", f"127.0.0.1:{listener}"]
    assert fake_docker.argvs()[0] == ["ps", "--filter", "label=catalogizer.stack=catalogizer", "--format", "{{.Ports}}"]
    fake_docker.set(PS_PORTS="")
    with pytest.raises(preflight.HookError) as caught:
        preflight.check_ports(f"127.0.0.1:{listener}", "catalogizer")
    assert str(caught.value) == (
        f"host port {listener} is held by another process (see `ss -ltnp 'sport = :{listener}'`); "
        "stop it or change the port in the stack config"
    )
    assert preflight.check_ports("", "catalogizer") == []


def test_check_ports_names_another_container(fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    fake_docker.set(PS_PUBLISH_8443="someone-else")
    with pytest.raises(preflight.HookError) as caught:
        preflight.check_ports("0.0.0.0:8443", "catalogizer")
    assert str(caught.value) == (
        "host port 8443 is held by container someone-else, not this stack; stop it or change the port"
    )


def test_check_ports_of_a_remote_engine_binds_nothing_here(
    fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, listener: int
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@docker-host")
    assert preflight.check_ports(f"127.0.0.1:{listener}", "catalogizer") == [f"127.0.0.1:{listener}"]


def test_check_certificate(tmp_path: Path) -> None:
    good = write_self_signed(tmp_path / "good", "x.example.com", ("x.example.com",), valid_days=30)
    assert re.fullmatch(NOT_AFTER, preflight.check_certificate(good.cert_file))
    expired = write_self_signed(tmp_path / "old", "x", ("x",), valid_days=-1, not_before_days_ago=10)
    with pytest.raises(preflight.HookError) as caught:
        preflight.check_certificate(expired.cert_file)
    expired_on = (
        rf"TLS certificate {re.escape(str(expired.cert_file))} expired on {NOT_AFTER}; renew it before deploying"
    )
    assert re.fullmatch(expired_on, str(caught.value))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(preflight.HookError, match=f"TLS certificate {garbage} is not a readable PEM certificate: "):
        preflight.check_certificate(garbage)
    with pytest.raises(preflight.HookError) as caught:
        preflight.check_certificate(tmp_path / "missing.pem")
    assert str(caught.value) == (
        f"TLS certificate {tmp_path / 'missing.pem'} does not exist; place it there or fix catalogizer:tls.certFile"
    )


@pytest.fixture
def host_env(fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeDocker:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("PREFLIGHT_DISK_PROBE", raising=False)
    monkeypatch.delenv("PREFLIGHT_PROBE_IMAGE", raising=False)
    monkeypatch.delenv("PREFLIGHT_MIN_FREE_GB", raising=False)
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("STACK_LABEL", "catalogizer")
    monkeypatch.setenv("PREFLIGHT_PORTS", f"127.0.0.1:{_free_port()}")
    # the engine's data root next to the backup folder, not around it (the preflight refuses that)
    fake_docker.set(DOCKER_ROOT=str(tmp_path / "docker"))
    return fake_docker


def test_main_prints_what_it_found(
    host_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = write_self_signed(tmp_path / "ssl", "x", ("x",), valid_days=30)
    monkeypatch.setenv("TLS_CERT_FILE", str(cert.cert_file))
    monkeypatch.setenv("PREFLIGHT_MIN_FREE_GB", "0")
    preflight.main()
    summary = json.loads(capsys.readouterr().out)
    assert summary["docker"] == "24.0.7"
    assert set(summary["freeGb"]) == {"dockerRoot", "backupDir"}
    assert summary["ports"] == [os.environ["PREFLIGHT_PORTS"]]
    assert re.fullmatch(NOT_AFTER, summary["certificateNotAfter"])


def test_main_without_certificate_or_ports(
    host_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TLS_CERT_FILE", raising=False)
    monkeypatch.delenv("PREFLIGHT_PORTS")
    monkeypatch.setattr(preflight, "free_gb_local", lambda path: 10.0)
    preflight.main()  # the default floor is 10 GB: exactly 10 passes
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"docker": "24.0.7", "freeGb": {"dockerRoot": 10.0, "backupDir": 10.0}, "ports": []}


def test_main_measures_a_remote_engine_with_the_probe_image(
    host_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@docker-host")
    monkeypatch.setenv("PREFLIGHT_PROBE_IMAGE", "postgres:15-alpine")
    host_env.set(DF="header\n/dev/sda1 1 1 31457280 1% /probe\n")
    preflight.main()
    assert json.loads(capsys.readouterr().out)["freeGb"]["dockerRoot"] == 30.0
    (run,) = [argv for argv in host_env.argvs() if argv[0] == "run"]
    assert run[4:6] == ["--", "postgres:15-alpine"]


def test_main_fails_on_the_first_problem(
    host_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(preflight, "free_gb_local", lambda path: 9.9)
    with pytest.raises(SystemExit) as exited:
        preflight.main()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("preflight failed: only 9.9 GB free on Docker's data root ")
    assert "below the 10 GB floor" in captured.err
