"""The rendered nginx.conf under a REAL nginx (the host's /usr/sbin/nginx).

Everything runs on 127.0.0.1: a stdlib HTTP backend plays the API, a CA and a
server certificate are generated with `cryptography`, and nginx is started from
a private directory with the paths pointed there through NginxSite fields only.
No Docker, no network beyond loopback.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from certs import make_ca
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ports import free_port

from rendering.nginx import NginxSite, render_nginx_conf

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LOOPBACK = "127.0.0.1"
TIMEOUT = 10.0


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Pki:
    ca_path: Path
    cert_path: Path
    key_path: Path


def make_pki(directory: Path) -> Pki:
    """A private CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca = make_ca("catalogizer-deploy test CA", valid_days=1)
    # RSA leaf: exercises the ECDHE-RSA suites that Let's Encrypt/self-signed RSA certs use.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    pki.ca_path.write_bytes(ca.pem())
    pki.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pki.key_path.chmod(0o600)
    return pki


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body_len: int
    body_sha256: str


@dataclass
class Backend:
    """A stand-in for the API: records what it receives, answers JSON."""

    port: int
    host: str = LOOPBACK
    seen: list[SeenRequest] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    # Read the request, then close the connection without answering (a replica
    # dying mid-request): nginx sees an upstream error after the request was sent.
    drop: bool = False

    def reset(self) -> None:
        self.seen.clear()

    def paths(self) -> list[str]:
        return [r.path for r in self.seen]


class _BackendServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # nginx closing an upstream connection mid-answer (a client it refused or timed out under the
        # hardening tests' load) breaks the backend's write; that is nginx's business, not an error here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _make_handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                return self.rfile.read(length)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            return b""

        def _handle(self) -> None:
            body = self._read_body()
            record = SeenRequest(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                len(body),
                hashlib.sha256(body).hexdigest(),
            )
            backend.seen.append(record)
            if backend.drop:
                self.close_connection = True
                return
            if self.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
                self._websocket_echo()
                return
            if self.path == "/health":
                payload: dict[str, Any] = {"status": "healthy", "backend": backend.port}
            elif self.path == "/big":
                payload = {"items": ["catalogizer media item"] * 500}
            else:
                payload = {"path": self.path, "method": self.command, "body_len": len(body), "backend": backend.host}
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _websocket_echo(self) -> None:
            # Enough of the handshake for a proxy: 101, then raw bytes both ways.
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            data = self.connection.recv(1024)
            if data:
                self.connection.sendall(b"echo:" + data)
            self.close_connection = True

        do_GET = _handle
        do_POST = _handle
        do_PUT = _handle

    return Handler


@contextlib.contextmanager
def run_backend(port: int | None = None, host: str = LOOPBACK) -> Iterator[Backend]:
    backend = Backend(port or free_port(), host)
    server = _BackendServer((host, backend.port), _make_handler(backend))
    server.daemon_threads = True
    backend.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield backend
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@dataclass(frozen=True)
class RunningNginx:
    site: NginxSite
    directory: Path
    conf_path: Path

    @property
    def http_port(self) -> int:
        return self.site.http_listen_port

    @property
    def https_port(self) -> int:
        return self.site.https_listen_port


def site_for(directory: Path, pki: Pki, api_port: int, **overrides: Any) -> NginxSite:
    """An NginxSite whose every path lives in `directory` and that listens on free loopback ports."""
    https_port = free_port()
    values: dict[str, Any] = {
        "server_name": "localhost",
        "tls_enabled": True,
        "hsts": True,
        "public_https_port": https_port,
        "api_host": LOOPBACK,  # an IP: nginx needs no DNS lookup
        "api_port": api_port,
        "http_listen_port": free_port(),
        "https_listen_port": https_port,
        "cert_path": str(pki.cert_path),
        "key_path": str(pki.key_path),
        "log_dir": str(directory),
        "pid_path": str(directory / "nginx.pid"),
        "temp_dir": str(directory / "temp"),
        "acme_webroot": str(directory / "acme"),
        "listen_address": LOOPBACK,
        # Workers must reach the files in a root-only tmp dir; ignored (with a
        # notice) when the tests do not run as root.
        "worker_user": "root" if os.geteuid() == 0 else None,
    }
    values.update(overrides)
    return NginxSite(**values)


def write_conf(directory: Path, site: NginxSite) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "temp").mkdir(exist_ok=True)
    conf_path = directory / "nginx.conf"
    conf_path.write_text(render_nginx_conf(site))
    return conf_path


def nginx_test(conf_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX, "-t", "-c", str(conf_path), "-p", str(conf_path.parent)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.2):
        return True
    return False


@contextlib.contextmanager
def run_nginx(directory: Path, site: NginxSite) -> Iterator[RunningNginx]:
    conf_path = write_conf(directory, site)
    checked = nginx_test(conf_path)
    assert checked.returncode == 0, checked.stderr
    log = (directory / "nginx.stderr").open("w")
    # Own session, so teardown can signal the master and its workers by our group id.
    process = subprocess.Popen(
        [NGINX, "-c", str(conf_path), "-p", str(directory), "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        ports = [site.http_listen_port] + ([site.https_listen_port] if site.tls_enabled else [])
        deadline = time.monotonic() + TIMEOUT
        while not all(_port_open(p) for p in ports):
            if process.poll() is not None:
                raise AssertionError(f"nginx exited: {(directory / 'nginx.stderr').read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError("nginx did not open its ports in time")
            time.sleep(0.05)
        yield RunningNginx(site, directory, conf_path)
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: fast shutdown of master and workers
            try:
                process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(TIMEOUT)
        # Workers orphaned by a crashed master would keep the ports open.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def client_context(pki: Pki | None, **versions: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_path) if pki else None)
    for attr, value in versions.items():
        setattr(ctx, attr, value)
    return ctx


class TLSConnection(http.client.HTTPConnection):
    """HTTPS to 127.0.0.1, verifying the certificate for server_hostname ("localhost")."""

    def __init__(self, port: int, context: ssl.SSLContext, server_hostname: str = "localhost") -> None:
        super().__init__(LOOPBACK, port, timeout=TIMEOUT)
        self._ctx = context
        self._server_hostname = server_hostname

    def connect(self) -> None:
        super().connect()
        self.sock = self._ctx.wrap_socket(self.sock, server_hostname=self._server_hostname)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    all_headers = {"Host": "localhost", **(headers or {})}
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    return Reply(response.status, response.headers, response.read())


def https(running: RunningNginx, pki: Pki, method: str, path: str, **kwargs: Any) -> Reply:
    conn = TLSConnection(running.https_port, client_context(pki))
    try:
        return request(conn, method, path, **kwargs)
    finally:
        conn.close()


def http_plain(port: int, method: str, path: str, **kwargs: Any) -> Reply:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=TIMEOUT)
    try:
        return request(conn, method, path, **kwargs)
    finally:
        conn.close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def backend() -> Iterator[Backend]:
    with run_backend() as running:
        yield running


@pytest.fixture(scope="module")
def tls_nginx(tmp_path_factory: pytest.TempPathFactory, pki: Pki, backend: Backend) -> Iterator[RunningNginx]:
    directory = tmp_path_factory.mktemp("nginx-tls")
    site = site_for(directory, pki, backend.port, tls_enabled=True, hsts=True)
    acme = Path(site.acme_webroot) / ".well-known" / "acme-challenge"
    acme.mkdir(parents=True)
    (acme / "token123").write_text("token123.thumbprint")
    with run_nginx(directory, site) as running:
        yield running


@pytest.fixture
def fresh_nginx(
    tmp_path: Path, pki: Pki, backend: Backend
) -> Iterator[Callable[..., contextlib.AbstractContextManager[RunningNginx]]]:
    """Start a dedicated nginx (own rate-limit state, own backend port...)."""
    with contextlib.ExitStack() as stack:

        def start(**overrides: Any) -> contextlib.AbstractContextManager[RunningNginx]:
            directory = tmp_path / f"nginx-{len(list(tmp_path.iterdir()))}"
            site = site_for(directory, pki, overrides.pop("api_port", backend.port), **overrides)
            return stack.enter_context(run_nginx(directory, site))  # type: ignore[return-value]

        yield start


@pytest.fixture(autouse=True)
def _clear_backend_log(backend: Backend) -> None:
    backend.reset()


# --------------------------------------------------------------------------- nginx -t


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"tls_enabled": True, "hsts": True}, id="tls-hsts"),
        pytest.param({"tls_enabled": True, "hsts": False}, id="tls-no-hsts"),
        pytest.param({"tls_enabled": False, "hsts": False}, id="tls-off"),
        # The production shape: a Docker alias that does not resolve here.  The
        # config must still load -- nginx resolves it per request, not at startup.
        pytest.param({"api_host": "api", "resolver": "127.0.0.11"}, id="dns-name-upstream"),
        pytest.param({"public_https_port": 443}, id="default-public-port"),
    ],
)
def test_nginx_t_accepts_rendered_config(tmp_path: Path, pki: Pki, overrides: dict[str, Any]) -> None:
    conf_path = write_conf(tmp_path, site_for(tmp_path, pki, 8080, **overrides))
    result = nginx_test(conf_path)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    assert "[emerg]" not in result.stderr
    assert "[warn]" not in result.stderr, result.stderr


def test_nginx_starts_without_any_api_and_answers_502_quickly(fresh_nginx: Callable[..., Any], pki: Pki) -> None:
    dead_port = free_port()  # nothing listens here: connection refused, like a stopped replica
    running = fresh_nginx(api_port=dead_port)
    started = time.monotonic()
    assert https(running, pki, "GET", "/api/v1/media").status == 502
    assert https(running, pki, "POST", "/api/v1/media", body=b"{}").status == 502
    assert https(running, pki, "GET", "/health").status == 502
    assert time.monotonic() - started < 3.0


# --------------------------------------------------------------------------- TLS


def test_https_health_proxied_with_verified_certificate(tls_nginx: RunningNginx, pki: Pki, backend: Backend) -> None:
    reply = https(tls_nginx, pki, "GET", "/health")
    assert reply.status == 200
    assert reply.json() == {"status": "healthy", "backend": backend.port}
    assert backend.paths() == ["/health"]


def test_certificate_not_trusted_without_our_ca(tls_nginx: RunningNginx) -> None:
    # Proves the verification in the other tests is real.
    conn = TLSConnection(tls_nginx.https_port, client_context(None))
    with pytest.raises(ssl.SSLCertVerificationError):
        request(conn, "GET", "/health")
    conn.close()


def _handshake(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_accepted(tls_nginx: RunningNginx, pki: Pki, version: ssl.TLSVersion) -> None:
    ctx = client_context(pki, minimum_version=version, maximum_version=version)
    with _handshake(tls_nginx.https_port, ctx) as tls:
        assert tls.version() == version.name.replace("v1_", "v1.")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_refused_by_the_server(tls_nginx: RunningNginx, version: ssl.TLSVersion) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # SECLEVEL=0 lets this client really offer TLS 1.0/1.1, so the failure must
    # come from nginx (a protocol_version alert), not from the local OpenSSL.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.warns(DeprecationWarning):
        ctx.minimum_version = version
        ctx.maximum_version = version
    with pytest.raises(ssl.SSLError) as excinfo:
        _handshake(tls_nginx.https_port, ctx).close()
    assert "PROTOCOL_VERSION" in str(excinfo.value).upper(), excinfo.value


def test_http2_negotiated(tls_nginx: RunningNginx, pki: Pki) -> None:
    ctx = client_context(pki)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with _handshake(tls_nginx.https_port, ctx) as tls:
        assert tls.selected_alpn_protocol() == "h2"


# --------------------------------------------------------------------------- HTTP port


def test_http_redirects_to_https_with_port(tls_nginx: RunningNginx, backend: Backend) -> None:
    reply = http_plain(tls_nginx.http_port, "GET", "/api/v1/media?page=2")
    assert reply.status == 301
    assert reply.headers["Location"] == f"https://localhost:{tls_nginx.https_port}/api/v1/media?page=2"
    reply = http_plain(tls_nginx.http_port, "POST", "/.env", body=b"x")
    assert reply.status == 301
    assert backend.seen == []


def test_http_health_is_served_without_redirect(tls_nginx: RunningNginx, backend: Backend) -> None:
    reply = http_plain(tls_nginx.http_port, "GET", "/health")
    assert reply.status == 200
    assert reply.json()["status"] == "healthy"
    assert backend.seen[-1].headers["x-forwarded-proto"] == "http"


def test_nginx_self_health_answers_without_any_api(fresh_nginx: Callable[..., Any], pki: Pki) -> None:
    # No backend listens on this port: the container health check must still pass.
    running = fresh_nginx(api_port=free_port())
    reply = http_plain(running.http_port, "GET", "/nginx-health")
    assert (reply.status, reply.body) == (200, b"ok\n")
    assert https(running, pki, "GET", "/nginx-health").status == 200
    assert https(running, pki, "GET", "/health").status == 502


def test_acme_challenge_served_over_http(tls_nginx: RunningNginx, backend: Backend) -> None:
    reply = http_plain(tls_nginx.http_port, "GET", "/.well-known/acme-challenge/token123")
    assert reply.status == 200
    assert reply.body == b"token123.thumbprint"
    assert http_plain(tls_nginx.http_port, "GET", "/.well-known/acme-challenge/missing").status == 404
    assert backend.seen == []


# --------------------------------------------------------------------------- headers and filtering


SECURITY_HEADERS = {
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "0",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
    ),
}


@pytest.mark.parametrize("path, status", [("/api/v1/media", 200), ("/.git/config", 403), ("/metrics", 404)])
def test_hsts_and_security_headers_on_every_response(tls_nginx: RunningNginx, pki: Pki, path: str, status: int) -> None:
    reply = https(tls_nginx, pki, "GET", path)
    assert reply.status == status
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers.get_all(name) == [value], name
    assert reply.headers["Referrer-Policy"]
    assert reply.headers["Server"] == "nginx"  # server_tokens off: no version


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/api/v1/.env", "/.htpasswd"])
def test_hidden_files_denied(tls_nginx: RunningNginx, pki: Pki, backend: Backend, path: str) -> None:
    assert https(tls_nginx, pki, "GET", path).status == 403
    assert backend.seen == []


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "//metrics", "/api/../metrics", "/%6detrics"])
def test_metrics_not_exposed(tls_nginx: RunningNginx, pki: Pki, backend: Backend, path: str) -> None:
    assert https(tls_nginx, pki, "GET", path).status == 404
    assert backend.seen == []


def test_backend_sees_forwarding_headers(tls_nginx: RunningNginx, pki: Pki, backend: Backend) -> None:
    reply = https(tls_nginx, pki, "GET", "/api/v1/media", headers={"X-Forwarded-For": "6.6.6.6"})
    assert reply.status == 200
    (seen,) = backend.seen
    assert seen.headers["x-forwarded-proto"] == "https"
    assert seen.headers["x-real-ip"] == LOOPBACK
    # The client's forged entry is dropped: nginx is the edge.
    assert seen.headers["x-forwarded-for"] == LOOPBACK
    assert seen.headers["host"] == "localhost"


@pytest.mark.parametrize("path", ["/api/v1/copy/upload", "/api/v1/subtitles/upload"])
def test_large_upload_accepted_where_the_api_takes_uploads(
    tls_nginx: RunningNginx, pki: Pki, backend: Backend, path: str
) -> None:
    body = os.urandom(5 * 1024 * 1024)
    reply = https(tls_nginx, pki, "POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
    assert reply.status == 200, reply.body[:200]
    (seen,) = backend.seen
    assert seen.body_len == len(body)
    assert seen.body_sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("path", ["/api/v1/media/upload", "/api/v1/copy/upload/x", "/", "/api/v1/auth/login"])
def test_bodies_over_1mb_refused_everywhere_else(
    tls_nginx: RunningNginx, pki: Pki, backend: Backend, path: str
) -> None:
    headers = {"Content-Type": "application/octet-stream"}
    assert https(tls_nginx, pki, "POST", path, body=os.urandom(1024 * 1024 + 1), headers=headers).status == 413
    assert backend.seen == []
    assert https(tls_nginx, pki, "POST", path, body=os.urandom(512 * 1024), headers=headers).status == 200


def test_gzip_for_json(tls_nginx: RunningNginx, pki: Pki) -> None:
    reply = https(tls_nginx, pki, "GET", "/big", headers={"Accept-Encoding": "gzip"})
    assert reply.status == 200
    assert reply.headers["Content-Encoding"] == "gzip"


def test_websocket_upgrade_proxied(tls_nginx: RunningNginx, pki: Pki, backend: Backend) -> None:
    with _handshake(tls_nginx.https_port, client_context(pki)) as tls:
        tls.sendall(
            b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = tls.recv(4096)
            assert chunk, f"connection closed after {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        tls.sendall(b"ping")
        assert tls.recv(1024) == b"echo:ping"
    (seen,) = backend.seen
    assert seen.headers["upgrade"] == "websocket"
    assert seen.headers["connection"].lower() == "upgrade"


# --------------------------------------------------------------------------- rate limits


def _paced(running: RunningNginx, pki: Pki, path: str, per_second: float, count: int) -> tuple[list[int], float]:
    """Send `count` requests on one keep-alive connection at a steady `per_second` pace."""
    conn = TLSConnection(running.https_port, client_context(pki))
    statuses = []
    try:
        start = time.monotonic()
        for i in range(count):
            delay = start + i / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            statuses.append(request(conn, "GET", path).status)
        return statuses, time.monotonic() - start
    finally:
        conn.close()


@pytest.mark.parametrize(
    "path, rate, burst",
    [("/api/v1/auth/login", 5, 5), ("/api/v1/register", 5, 5), ("/api/v1/media", 10, 20)],
)
def test_rate_limit_zones_enforced(fresh_nginx: Callable[..., Any], pki: Pki, path: str, rate: int, burst: int) -> None:
    running = fresh_nginx()
    # Offer 4x the allowed rate for ~1.5 s: nginx lets through the first
    # request, the burst, and `rate` per second after that.
    statuses, elapsed = _paced(running, pki, path, per_second=4 * rate, count=6 * rate)
    assert set(statuses) <= {200, 429}, statuses
    expected = 1 + burst + rate * elapsed
    assert statuses[: burst + 1] == [200] * (burst + 1)
    assert abs(statuses.count(200) - expected) <= 3, (statuses.count(200), expected, statuses)


# --------------------------------------------------------------------------- TLS off


def test_tls_off_serves_app_over_http(fresh_nginx: Callable[..., Any], backend: Backend) -> None:
    running = fresh_nginx(tls_enabled=False, hsts=True)
    reply = http_plain(running.http_port, "GET", "/api/v1/media")
    assert reply.status == 200
    assert reply.json()["path"] == "/api/v1/media"
    assert "Strict-Transport-Security" not in reply.headers
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert backend.seen[-1].headers["x-forwarded-proto"] == "http"
    assert http_plain(running.http_port, "GET", "/.env").status == 403
    assert not _port_open(running.https_port)


# --------------------------------------------------------------------------- several replicas behind one name
