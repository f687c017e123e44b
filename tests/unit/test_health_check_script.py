"""scripts/health_check.py without containers: verdicts, probes, argv, the retry loop, the report.

nginx is a local HTTP(S) server in a thread; the other probes go through the stand-in docker CLI.
"""

from __future__ import annotations

import http.server
import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from certs import CertPair, write_self_signed
from fake_docker import FakeDocker
from script_support import run_main, serve

from scripts import health_check

HOST = "catalogizer.example.com"


def test_api_health_url() -> None:
    assert health_check.API_HEALTH == "http://localhost:8080/health"


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, '{"status": "healthy"}', (True, 'HTTP 200 {"status": "healthy"}')),
        (200, '{"status": "degraded"}', (False, 'HTTP 200 {"status": "degraded"}')),
        (503, '{"status": "healthy"}', (False, 'HTTP 503 {"status": "healthy"}')),
        (200, '["healthy"]', (False, 'HTTP 200 ["healthy"]')),
        (200, "{}", (False, "HTTP 200 {}")),
        (200, "<html>ok</html>", (False, "HTTP 200, body is not JSON: '<html>ok</html>'")),
    ],
)
def test_healthy_json(status: int, body: str, verdict: tuple[bool, str]) -> None:
    assert health_check._healthy_json(status, body) == verdict


def test_healthy_json_shortens_long_answers() -> None:
    ok, answer = health_check._healthy_json(200, "x" * 1000)
    assert not ok and answer == f"HTTP 200, body is not JSON: {'x' * 200!r}"
    ok, answer = health_check._healthy_json(200, json.dumps({"status": "healthy", "pad": "y" * 1000}))
    assert ok and len(answer) == len("HTTP 200 ") + 300


def test_check_run_records_the_answer_scrubbed_and_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "redis-secret-value")
    check = health_check.Check("redis", "r", lambda: (True, "PONG redis-secret-value " + "z" * 1000))
    assert (check.ok, check.answer) == (False, "not run yet")
    check.run()
    assert check.ok is True
    assert check.answer == ("PONG *** " + "z" * 1000)[:500]


def test_check_run_turns_an_exception_into_a_failed_answer() -> None:
    def probe() -> tuple[bool, str]:
        raise ConnectionRefusedError("connection refused")

    check = health_check.Check("nginx", "n", probe, ok=True)
    check.run()
    assert (check.ok, check.answer) == (False, "ConnectionRefusedError: connection refused")


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []  # noqa: RUF012 (one list per server, set below)
    body = b'{"status": "healthy"}'
    status = 200

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "host": self.headers["Host"], "agent": self.headers["User-Agent"]})
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None) -> Iterator[tuple[int, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"seen": []})
    with serve(handler, context) as port:
        yield port, handler


@pytest.fixture
def certs(tmp_path: Path) -> CertPair:
    return write_self_signed(tmp_path / "ssl", HOST, (HOST,), valid_days=30)


@pytest.fixture
def https_server(certs: CertPair) -> Iterator[tuple[int, type[_Handler]]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert_file, certs.key_file)
    yield from _serve(context)


@pytest.fixture
def http_server() -> Iterator[tuple[int, type[_Handler]]]:
    yield from _serve(None)


def test_nginx_probe_verifies_the_stacks_own_certificate_by_name(
    https_server: tuple[int, type[_Handler]], certs: CertPair
) -> None:
    port, handler = https_server
    probe = health_check.nginx_probe(f"https://{HOST}:{port}/health", "127.0.0.1", certs.cert_pem, 5)
    assert probe() == (True, 'HTTP 200 {"status": "healthy"}')
    assert handler.seen == [{"path": "/health", "host": f"{HOST}:{port}", "agent": "catalogizer-health"}]


def test_nginx_probe_refuses_another_certificate_or_name(
    https_server: tuple[int, type[_Handler]], tmp_path: Path, certs: CertPair
) -> None:
    port, _ = https_server
    other = write_self_signed(tmp_path / "other", HOST, (HOST,), valid_days=30)
    with pytest.raises(ssl.SSLCertVerificationError):
        health_check.nginx_probe(f"https://{HOST}:{port}/health", "127.0.0.1", other.cert_pem, 5)()
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        health_check.nginx_probe(f"https://other.example.com:{port}/health", "127.0.0.1", certs.cert_pem, 5)()


def test_nginx_probe_needs_the_ca_for_https() -> None:
    with pytest.raises(health_check.HookError) as caught:
        health_check.nginx_probe(f"https://{HOST}/health", "127.0.0.1", None, 5)
    assert str(caught.value) == "HEALTH_CA_PEM (or HEALTH_SYSTEM_CA=true) is required for an https HEALTH_URL"


def test_nginx_probe_over_plain_http(http_server: tuple[int, type[_Handler]]) -> None:
    port, handler = http_server
    handler.status, handler.body = 502, b"<html>Bad Gateway</html>"
    probe = health_check.nginx_probe(f"http://{HOST}:{port}", "127.0.0.1", None, 5)
    assert probe() == (False, "HTTP 502, body is not JSON: '<html>Bad Gateway</html>'")
    assert handler.seen[0]["path"] == "/"


def test_nginx_probe_uses_the_default_port_of_the_scheme(monkeypatch: pytest.MonkeyPatch, certs: CertPair) -> None:
    ports: list[int] = []

    def refuse(address: tuple[str, int], timeout: float) -> None:
        ports.append(address[1])
        assert address[0] == "10.0.0.9" and timeout == 7
        raise ConnectionRefusedError

    monkeypatch.setattr(health_check.socket, "create_connection", refuse)
    for url, ca in ((f"https://{HOST}/health", certs.cert_pem), (f"http://{HOST}/health", None)):
        with pytest.raises(ConnectionRefusedError):
            health_check.nginx_probe(url, "10.0.0.9", ca, 7)()
    assert ports == [443, 80]


def test_api_probe(fake_docker: FakeDocker) -> None:
    probe = health_check.api_probe("api-1", 5)
    assert probe() == (True, 'HTTP 200 {"status": "healthy"}')
    assert fake_docker.argvs() == [
        ["exec", "--", "api-1", "wget", "-q", "-O", "-", "-T", "5", "http://localhost:8080/health"]
    ]
    fake_docker.set(API_BODY='{"status": "starting"}')
    assert probe() == (False, 'HTTP 200 {"status": "starting"}')
    fake_docker.set(API_EXIT="1", API_ERR="wget: server returned error: HTTP/1.1 404 Not Found\n")
    assert probe() == (
        False,
        "wget http://localhost:8080/health failed (exit 1): wget: server returned error: HTTP/1.1 404 Not Found",
    )
    fake_docker.set(API_ERR="", API_BODY="connection refused\n")
    assert probe() == (False, "wget http://localhost:8080/health failed (exit 1): connection refused")


def test_postgres_probe(fake_docker: FakeDocker) -> None:
    probe = health_check.postgres_probe("pg", "catalogizer", "catalogizer_db", 5)
    assert probe() == (True, "127.0.0.1:5432 - accepting connections")
    assert fake_docker.argvs() == [
        ["exec", "--", "pg", "pg_isready", "-h", "127.0.0.1", "-U", "catalogizer", "-d", "catalogizer_db"]
    ]
    fake_docker.set(PG_READY_EXIT="2")
    assert probe()[0] is False


def test_redis_probe_authenticates_through_the_environment(
    fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDISCLI_AUTH", "redis-secret-value")
    fake_docker.set(REDIS_PASSWORD="redis-secret-value")
    probe = health_check.redis_probe("redis", 5)
    assert probe() == (True, "PONG")
    call = fake_docker.calls()[0]
    assert call["argv"] == ["exec", "-e", "REDISCLI_AUTH", "--", "redis", "redis-cli", "--no-auth-warning", "ping"]
    assert call["env"]["REDISCLI_AUTH"] == "redis-secret-value"
    fake_docker.set(REDIS_PASSWORD="another")
    assert probe() == (False, "NOAUTH Authentication required.")


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, certs: CertPair, fake_docker: FakeDocker) -> FakeDocker:
    for name, value in {
        "HEALTH_URL": f"https://{HOST}:1/health",
        "HEALTH_CA_PEM": certs.cert_pem,
        "NGINX_CONTAINER": "nginx",
        "API_CONTAINERS": "api-1,api-2,",
        "PG_CONTAINER": "pg",
        "PGUSER": "catalogizer",
        "PGDATABASE": "catalogizer_db",
        "REDIS_CONTAINER": "redis",
        "REDIS_PASSWORD": "redis-secret-value",
        "FAKE_REDIS_PASSWORD": "redis-secret-value",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("HEALTH_CA_FILE", "HEALTH_CONNECT_ADDRESS", "HEALTH_REQUEST_TIMEOUT", "HEALTH_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REDISCLI_AUTH", raising=False)
    return fake_docker


def test_build_checks_covers_nginx_every_api_postgres_and_redis(stack_env: FakeDocker) -> None:
    checks = health_check.build_checks()
    assert [(c.name, c.container) for c in checks] == [
        ("nginx", "nginx"),
        ("api:api-1", "api-1"),
        ("api:api-2", "api-2"),
        ("postgres", "pg"),
        ("redis", "redis"),
    ]
    for check in checks[1:]:
        check.run()
    assert all(c.ok for c in checks[1:]), [c.answer for c in checks]
    # The request timeout (default 5 s) reaches the API probe's wget.
    assert stack_env.argvs()[0][-2] == "5"


def test_build_checks_reads_the_ca_file_and_the_connect_address(
    stack_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, certs: CertPair
) -> None:
    monkeypatch.setenv("HEALTH_CA_FILE", str(certs.cert_file))
    monkeypatch.setenv("HEALTH_CA_PEM", "not a certificate")
    monkeypatch.setenv("HEALTH_CONNECT_ADDRESS", "10.0.0.9")
    monkeypatch.setenv("HEALTH_REQUEST_TIMEOUT", "9")
    addresses: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], timeout: float) -> None:
        addresses.append(address)
        assert timeout == 9
        raise ConnectionRefusedError

    monkeypatch.setattr(health_check.socket, "create_connection", refuse)
    checks = health_check.build_checks()
    checks[0].run()
    assert addresses == [("10.0.0.9", 1)]
    checks[1].run()
    assert stack_env.argvs()[0][-2] == "9"


def test_build_checks_connects_to_loopback_by_default(stack_env: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    addresses: list[str] = []

    def refuse(address: tuple[str, int], timeout: float) -> None:
        addresses.append(address[0])
        raise ConnectionRefusedError

    monkeypatch.setattr(health_check.socket, "create_connection", refuse)
    health_check.build_checks()[0].run()
    assert addresses == ["127.0.0.1"]


class FakeTime:
    """Replaces health_check's `time` only: a clock that moves when the script sleeps."""

    def __init__(self, start: float = 1000.0, on_sleep: Callable[[], None] | None = None) -> None:
        self.now = start
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep()


def _run_main(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_main(health_check.main, capsys)


def test_main_reports_healthy_once_every_check_passes(
    stack_env: FakeDocker,
    https_server: tuple[int, type[_Handler]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, _ = https_server
    monkeypatch.setenv("HEALTH_URL", f"https://{HOST}:{port}/health")
    code, out, err = _run_main(capsys)
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["status"] == "healthy" and summary["attempts"] == 1
    assert summary["checks"] == {
        "nginx": 'HTTP 200 {"status": "healthy"}',
        "api:api-1": 'HTTP 200 {"status": "healthy"}',
        "api:api-2": 'HTTP 200 {"status": "healthy"}',
        "postgres": "127.0.0.1:5432 - accepting connections",
        "redis": "PONG",
    }


def test_main_retries_only_failed_checks_until_they_pass(
    stack_env: FakeDocker,
    https_server: tuple[int, type[_Handler]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, handler = https_server
    monkeypatch.setenv("HEALTH_URL", f"https://{HOST}:{port}/health")
    monkeypatch.setenv("HEALTH_INTERVAL", "3")
    handler.status = 503
    fake_time = FakeTime(on_sleep=lambda: setattr(handler, "status", 200))
    monkeypatch.setattr(health_check, "time", fake_time)
    code, out, _ = _run_main(capsys)
    assert code == 0 and json.loads(out)["attempts"] == 2
    assert fake_time.slept == [3]
    assert len(handler.seen) == 2
    assert sum(1 for argv in stack_env.argvs() if "pg_isready" in argv) == 1


def test_main_names_each_failed_check_with_its_answer_and_logs(
    stack_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTH_TIMEOUT", "0")
    stack_env.set(PG_READY_EXIT="2")
    monkeypatch.setattr(health_check.socket, "create_connection", _refused)
    code, out, err = _run_main(capsys)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0].startswith("health check failed after ") and lines[0].endswith("s (1 attempts):")
    log_lines = [f"    log line {i} of nginx" for i in range(20)]
    assert lines[1:23] == [
        "- nginx: last answer: ConnectionRefusedError: refused",
        "  last log lines of nginx:",
        *log_lines,
    ]
    assert lines[23:25] == [
        "- postgres: last answer: 127.0.0.1:5432 - accepting connections",
        "  last log lines of pg:",
    ]
    assert len(lines) == 1 + 2 * 22
    assert "redis-secret-value" not in err


def _refused(address: tuple[str, int], timeout: float) -> None:
    raise ConnectionRefusedError("refused")


def test_main_gives_up_at_the_deadline(
    stack_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(health_check, "time", FakeTime())
    monkeypatch.setattr(health_check.socket, "create_connection", _refused)
    monkeypatch.setenv("HEALTH_TIMEOUT", "10")
    monkeypatch.setenv("HEALTH_INTERVAL", "2")
    code, _, err = _run_main(capsys)
    # Attempts at 0, 2, 4, 6, 8 and 10 s; a seventh would start after the deadline.
    assert code == 1 and err.startswith("health check failed after 10.0s (6 attempts):")


def test_main_waits_120_seconds_by_default(
    stack_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(health_check, "time", FakeTime())
    monkeypatch.setattr(health_check.socket, "create_connection", _refused)
    monkeypatch.delenv("HEALTH_INTERVAL", raising=False)
    code, _, err = _run_main(capsys)
    # Every 2 s (the default interval) for 120 s.
    assert code == 1 and err.startswith("health check failed after 120.0s (61 attempts):")


def test_main_cannot_start_without_its_settings(
    stack_env: FakeDocker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_PASSWORD")
    code, _, err = _run_main(capsys)
    assert (code, err) == (1, "health check could not start: environment variable REDIS_PASSWORD is required\n")
    monkeypatch.setenv("REDIS_PASSWORD", "x" * 12)
    monkeypatch.setenv("HEALTH_CA_FILE", "/nonexistent/ca.pem")
    code, _, err = _run_main(capsys)
    assert code == 1 and err.startswith("health check could not start: [Errno 2] No such file or directory")
    assert stack_env.calls() == []
