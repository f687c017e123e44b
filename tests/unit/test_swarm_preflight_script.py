"""scripts/swarm_preflight.py without a swarm: the registry is probed over exactly the configured
scheme (and a failure says which), and free space is checked as on one host (preflight.check_disk)
on the data node's engine, reached through DOCKER_HOST=DATA_NODE_HOST, and on the local backup folder.
tests/swarm/test_cluster.py runs the script against a real swarm."""

from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from certs import CertPair, write_self_signed
from script_support import run_main, serve

from scripts import swarm_preflight

# The preflight module swarm_preflight imports (as the hook runs it: scripts/ on sys.path).
preflight = sys.modules[swarm_preflight.check_disk.__module__]
DATA_NODE = "ssh://admin@data-1"
MANAGER = "unix:///run/manager.sock"


class _Registry(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []  # noqa: RUF012 (one list per server, set below)
    api_header = True

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(401)  # a registry that wants a login still answers as one
        if self.api_header:
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None, api_header: bool = True) -> Iterator[tuple[int, type[_Registry]]]:
    handler = type("Handler", (_Registry,), {"seen": [], "api_header": api_header})
    with serve(handler, context) as port:
        yield port, handler


@pytest.fixture
def plain_registry() -> Iterator[tuple[int, type[_Registry]]]:
    yield from _serve(None)


@pytest.fixture
def certs(tmp_path: Path) -> CertPair:
    return write_self_signed(tmp_path / "ssl", "localhost", ("localhost",), valid_days=30)


@pytest.fixture
def tls_registry(certs: CertPair, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, type[_Registry]]]:
    """An HTTPS registry the probe trusts (its certificate stands in for the system's CAs)."""
    trusting = ssl.create_default_context

    def create_default_context() -> ssl.SSLContext:
        context = trusting()
        context.load_verify_locations(cadata=certs.cert_pem)
        return context

    monkeypatch.setattr(swarm_preflight.ssl, "create_default_context", create_default_context)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certs.cert_file, certs.key_file)
    yield from _serve(server)


def test_a_plain_http_registry_is_probed_over_http(plain_registry: tuple[int, type[_Registry]]) -> None:
    port, handler = plain_registry
    assert swarm_preflight.check_registry(f"127.0.0.1:{port}", "http", 5) == f"http://127.0.0.1:{port} (registry/2.0)"
    assert handler.seen == ["/v2/"]


def test_an_https_registry_is_probed_over_https(tls_registry: tuple[int, type[_Registry]]) -> None:
    port, handler = tls_registry
    found = swarm_preflight.check_registry(f"localhost:{port}/catalogizer", "https", 5)
    assert found == f"https://localhost:{port} (registry/2.0)" and handler.seen == ["/v2/"]


@pytest.mark.parametrize(
    ("server", "scheme", "written", "hint"),
    [
        # A registry configured without http:// is pulled over HTTPS by the engines: one that answers
        # only plain HTTP must stop the run, naming https.
        (
            "plain_registry",
            "https",
            "{host}",
            "if it is a plain-HTTP registry on a private network, write it as http://host:port",
        ),
        ("tls_registry", "http", "http://{host}", "if it serves HTTPS, write it without http://"),
    ],
)
def test_the_configured_scheme_only_and_a_failure_names_it(
    request: pytest.FixtureRequest, server: str, scheme: str, written: str, hint: str
) -> None:
    port, handler = request.getfixturevalue(server)
    host = f"{'127.0.0.1' if server == 'plain_registry' else 'localhost'}:{port}"
    with pytest.raises(swarm_preflight.HookError) as caught:
        swarm_preflight.check_registry(host, scheme, 5)
    message = str(caught.value)
    assert message.startswith(
        f"catalogizer:cluster.registry {written.format(host=host)} does not answer as a registry over {scheme} "
        f"({scheme}://{host}/v2/): "
    )
    assert message.endswith(f"; {hint}")
    assert handler.seen == []  # the other scheme was not tried: no GET /v2/ reached the server


@pytest.fixture
def web_server() -> Iterator[tuple[int, type[_Registry]]]:
    """Answers, but not as a registry."""
    yield from _serve(None, api_header=False)


def test_something_else_answering_is_not_a_registry(web_server: tuple[int, type[_Registry]]) -> None:
    port, _ = web_server
    with pytest.raises(swarm_preflight.HookError) as caught:
        swarm_preflight.check_registry(f"127.0.0.1:{port}", "http", 5)
    assert str(caught.value) == (
        f"catalogizer:cluster.registry http://127.0.0.1:{port} does not answer as a registry over http "
        f"(http://127.0.0.1:{port}/v2/): it answered, but without the Docker-Distribution-API-Version header"
    )


@pytest.mark.parametrize("scheme", ["", "HTTPS", "ftp", "https://"])
def test_only_the_two_schemes(scheme: str) -> None:
    with pytest.raises(swarm_preflight.HookError, match="REGISTRY_SCHEME must be one of https, http"):
        swarm_preflight.check_registry("127.0.0.1:5000", scheme, 5)


# --- free space on the data node and the backup folder ----------------------------------------------


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], str | None]]:
    """Stands in for the docker CLI of both scripts: records each call's argv and the engine it
    went to (DOCKER_HOST at the time); the data node's root is /srv/docker with 30 GB free."""
    calls: list[tuple[list[str], str | None]] = []

    def docker(args: list[str], *, timeout: float) -> subprocess.CompletedProcess[bytes]:
        calls.append((list(args), os.environ.get("DOCKER_HOST")))
        if args[0] == "info" and "{{.DockerRootDir}}" in args:
            return subprocess.CompletedProcess(args, 0, b"/srv/docker\n", b"")
        if args[0] == "info":
            return subprocess.CompletedProcess(args, 0, b"data-id\n", b"")
        if args[0] == "run":
            return subprocess.CompletedProcess(args, 0, b"header\n/dev/vdb 1 1 31457280 1% /probe\n", b"")
        raise AssertionError(f"unexpected docker call {args}")

    monkeypatch.setattr(preflight, "docker", docker)
    monkeypatch.setattr(swarm_preflight, "docker", docker)
    return calls


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, engines: list) -> dict[Path, float]:
    """A cluster that passes every other check; returns the local folders' free GB."""
    free: dict[Path, float] = {Path("/srv/backups"): 40.0}
    monkeypatch.setattr(preflight, "free_gb_local", lambda path: free[path])
    monkeypatch.setattr(swarm_preflight, "check_manager", lambda: "manager-id")
    monkeypatch.setattr(swarm_preflight, "labelled_nodes", lambda edge, data: (["edge-id"], ["data-id"]))
    monkeypatch.setattr(swarm_preflight, "check_registry", lambda registry, scheme, timeout: "http://r (registry/2.0)")
    monkeypatch.delenv("RESTIC_REPOSITORY", raising=False)
    monkeypatch.delenv("PREFLIGHT_DISK_PROBE", raising=False)
    for name, value in {
        "DOCKER_HOST": MANAGER,
        "EDGE_LABEL": "e",
        "DATA_LABEL": "d",
        "DATA_NODE_HOST": DATA_NODE,
        "REGISTRY": "r",
        "BACKUP_DIR": "/srv/backups",
        "PREFLIGHT_MIN_FREE_GB": "10",
        "PREFLIGHT_PROBE_IMAGE": "postgres:15-alpine",
    }.items():
        monkeypatch.setenv(name, value)
    return free


def _run(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_main(swarm_preflight.main, capsys)


def test_free_space_is_measured_on_the_data_node_and_the_backup_folder(
    cluster: dict[Path, float], engines: list, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys)
    assert (code, err) == (0, "")
    assert json.loads(out)["freeGb"] == {"dockerRoot": 30.0, "backupDir": 40.0}
    # The data node's engine through DOCKER_HOST (never on argv), the single-host probe container.
    assert engines == [
        (["info", "--format", "{{.Swarm.NodeID}}"], DATA_NODE),
        (["info", "--format", "{{.DockerRootDir}}"], DATA_NODE),
        (["run", "--rm", "-v", "/srv/docker:/probe:ro", "--", "postgres:15-alpine", "df", "-Pk", "/probe"], DATA_NODE),
    ]
    assert os.environ["DOCKER_HOST"] == MANAGER  # the manager again for whatever follows


def test_a_full_data_node_stops_the_run(
    cluster: dict[Path, float], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PREFLIGHT_MIN_FREE_GB", "50")
    cluster[Path("/srv/backups")] = 60.0
    code, out, err = _run(capsys)
    assert (code, out) == (1, "")
    assert err == (
        "swarm preflight failed: only 30.0 GB free on Docker's data root /srv/docker on the data node "
        f"({DATA_NODE}), below the 50 GB floor; free space (docker image prune, old backups) or lower "
        "catalogizer:preflight.minFreeGb\n"
    )
    assert os.environ["DOCKER_HOST"] == MANAGER


def test_a_full_backup_folder_stops_the_run(cluster: dict[Path, float], capsys: pytest.CaptureFixture[str]) -> None:
    cluster[Path("/srv/backups")] = 2.0
    code, _, err = _run(capsys)
    assert code == 1 and err.startswith("swarm preflight failed: only 2.0 GB free on the backup folder /srv/backups,")


def test_a_local_data_node_socket_is_measured_here(
    cluster: dict[Path, float], engines: list, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # unix:// is this machine's engine (as on one host): its data root is measured directly.
    monkeypatch.setenv("DATA_NODE_HOST", "unix:///run/data.sock")
    cluster[Path("/srv/docker")] = 25.0
    code, out, _ = _run(capsys)
    assert code == 0 and json.loads(out)["freeGb"] == {"dockerRoot": 25.0, "backupDir": 40.0}
    assert [argv[0] for argv, _ in engines] == ["info", "info"]


@pytest.mark.parametrize("floor", ["-5", "ten", "nan", "inf", "1e400"])
def test_the_floor_must_be_a_number_of_gb(
    cluster: dict[Path, float], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], floor: str
) -> None:
    monkeypatch.setenv("PREFLIGHT_MIN_FREE_GB", floor)
    code, _, err = _run(capsys)
    assert code == 1
    assert err == f"swarm preflight failed: PREFLIGHT_MIN_FREE_GB must be a number of GB, got {floor!r}\n"


def test_the_backup_folder_is_required(
    cluster: dict[Path, float], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BACKUP_DIR")
    code, _, err = _run(capsys)
    assert (code, err) == (1, "swarm preflight failed: environment variable BACKUP_DIR is required\n")
