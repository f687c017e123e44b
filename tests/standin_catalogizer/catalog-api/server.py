#!/usr/bin/env python3
"""Stand-in for the Catalogizer Go API, used by the real-Docker tests and the rehearsal.

It imitates the real API wherever the deployment depends on it; every imitated
behaviour is listed, with the Catalogizer (or Gin) source it follows, in
tests/standin_catalogizer/README.md. Comments below name that source as
"file: function". Nothing here is copied from Catalogizer: it is a Python
re-implementation of the observable behaviour.

Only the stdlib plus psycopg2 and redis (Debian packages in the runtime image)
are used, so the image builds offline from the Debian mirror.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg2
import redis

VERSION = os.environ.get("APP_VERSION", "dev")
HEALTH_MODE = os.environ.get("HEALTH_MODE", "ok")
# The working directory is /app (Dockerfile WORKDIR); like main.go, every file the
# API writes is relative to it.
CONFIG_FILE = "config.json"
PORT_FILE = ".service-port"
LOG_FILE = os.environ.get("API_LOG_FILE", "logs/api.log")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# main.go: findAvailablePort(host, startPort, 10) tries the port and the next nine.
PORT_ATTEMPTS = 10
# main.go: the /health/deep handler answers "degraded" when the check takes longer.
DEEP_HEALTH_BUDGET = 0.1
# catalog-api/internal/metrics/health.go: checkDatabase pings with a 5 s context.
DB_PING_TIMEOUT = 5
# go-redis v9 options.go (Options.init): an empty Addr means localhost:6379.
GO_REDIS_DEFAULT_ADDR = "localhost:6379"
# catalog-api/config/config.go: getDefaultConfig; only keys the stand-in uses.
DEFAULT_CONFIG: dict[str, Any] = {
    "server": {"host": "localhost", "port": 8080, "enable_cors": True, "enable_https": True},
    "database": {
        "type": "postgres",
        "host": "localhost",
        "port": 5433,
        "name": "catalogizer",
        "user": "catalogizer",
        "password": "catalogizer_dev",
        "ssl_mode": "disable",
        "path": "./catalog.db",
    },
    "auth": {"jwt_secret": "", "enable_auth": True, "admin_username": "", "admin_password": ""},
    "catalog": {"default_page_size": 100, "max_page_size": 1000},
}

log = logging.getLogger("catalogizer-standin")


class Fatal(Exception):
    """The real API would log.Fatal here: the process exits with status 1."""


def go_atoi(raw: str, default: int = 8080) -> int:
    # main.go: atoi falls back to 8080 on anything strconv.Atoi rejects, so a bad
    # PORT never stops the API; it silently listens on 8080.
    try:
        return int(raw, 10)
    except ValueError:
        return default


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def _apply_database_env(cfg: dict[str, Any], env: dict[str, str]) -> None:
    db = cfg["database"]
    for var, key in (
        ("DATABASE_TYPE", "type"),
        ("DATABASE_HOST", "host"),
        ("DATABASE_NAME", "name"),
        ("DATABASE_USER", "user"),
        ("DATABASE_PASSWORD", "password"),
        ("DATABASE_SSL_MODE", "ssl_mode"),
    ):
        if env.get(var):
            db[key] = env[var]
    if env.get("DATABASE_PORT"):
        db["port"] = go_atoi(env["DATABASE_PORT"])


def _validate(cfg: dict[str, Any], env: dict[str, str]) -> None:
    # config.go: validateConfig. It runs only when config.json already existed.
    port = cfg["server"].get("port", 0)
    if not isinstance(port, int) or not 0 < port <= 65535:
        raise Fatal(f"invalid configuration: invalid server port: {port}")
    _apply_database_env(cfg, env)
    db = cfg["database"]
    db_type = db.get("type") or "postgres"
    if db_type == "postgres":
        if not db.get("host"):
            raise Fatal("invalid configuration: database host cannot be empty for postgres")
        if not db.get("name"):
            raise Fatal("invalid configuration: database name cannot be empty for postgres")
    elif db_type == "sqlite":
        if not db.get("path"):
            raise Fatal("invalid configuration: database path cannot be empty for sqlite")
    else:
        raise Fatal(f"invalid configuration: unsupported database type: {db_type}")
    auth = cfg["auth"]
    if auth.get("enable_auth"):
        for var, key in (("JWT_SECRET", "jwt_secret"), ("ADMIN_USERNAME", "admin_username")):
            if env.get(var):
                auth[key] = env[var]
        if env.get("ADMIN_PASSWORD"):
            auth["admin_password"] = env["ADMIN_PASSWORD"]
        if not auth.get("jwt_secret"):
            raise Fatal("invalid configuration: JWT_SECRET is not set (environment or config.json)")
        if len(auth["jwt_secret"]) < 32:
            raise Fatal("invalid configuration: JWT_SECRET must be at least 32 characters")
        if not auth.get("admin_username") or not auth.get("admin_password"):
            raise Fatal("invalid configuration: ADMIN_USERNAME and ADMIN_PASSWORD must both be set")


def load_config(env: dict[str, str]) -> dict[str, Any]:
    """config.go: LoadConfig("config.json"), then main.go's environment overrides."""
    cfg = _merge(DEFAULT_CONFIG, {})
    if not os.path.exists(CONFIG_FILE):
        # First start: the defaults are written and NOT validated. An unwritable /app
        # (read-only root filesystem) is fatal here.
        try:
            fd = os.open(CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(cfg, fh, indent=2)
        except OSError as exc:
            raise Fatal(f"cannot create default {CONFIG_FILE}: {exc}") from exc
        log.info("wrote default %s", os.path.abspath(CONFIG_FILE))
    else:
        # Every later start of the same container validates, so a restart without
        # JWT_SECRET/ADMIN_* fails where the first start succeeded.
        try:
            with open(CONFIG_FILE) as fh:
                cfg = _merge(cfg, json.load(fh))
        except (OSError, ValueError) as exc:
            raise Fatal(f"cannot read {CONFIG_FILE}: {exc}") from exc
        _validate(cfg, env)

    # main.go: main, the overrides applied after LoadConfig. API_PORT, REDIS_HOST,
    # REDIS_PORT and POSTGRES_* (the runbook's names) are not among them.
    auth, server = cfg["auth"], cfg["server"]
    if env.get("JWT_SECRET"):
        auth["jwt_secret"] = env["JWT_SECRET"]
    if env.get("ADMIN_USERNAME"):
        auth["admin_username"] = env["ADMIN_USERNAME"]
    if env.get("ADMIN_PASSWORD"):
        auth["admin_password"] = env["ADMIN_PASSWORD"]
    if env.get("PORT"):
        server["port"] = go_atoi(env["PORT"])
    if env.get("HOST"):
        server["host"] = env["HOST"]
    _apply_database_env(cfg, env)
    if not cfg["database"].get("ssl_mode"):
        cfg["database"]["ssl_mode"] = "disable"
    return cfg


def find_available_port(host: str, start: int) -> int:
    """main.go: findAvailablePort. A port counts as taken when a TCP connect succeeds."""
    for port in range(start, start + PORT_ATTEMPTS):
        try:
            with socket.create_connection((host, port), timeout=0.1):
                pass
        except OSError:
            return port
        log.warning("port %s:%d answers already; trying the next one", host, port)
    raise Fatal(f"no free port in {start}-{start + PORT_ATTEMPTS - 1} on {host}")


def try_mkdir(path: str, why: str) -> None:
    # main.go creates these lazily and only warns when it cannot (asset store,
    # TLS cache); a read-only /app costs features, not the start.
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create %s (%s): %s", path, why, exc)


class App:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.db_cfg = cfg["database"]
        self.started = time.monotonic()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.lock = threading.Lock()
        self.ping_lock = threading.Lock()
        self.ping_conn: Any = None
        self.redis: redis.Redis | None = None

    def db(self, timeout: int = 3) -> Any:
        # Request handlers open a fresh connection each time: a restarted Postgres
        # must never leave the API holding dead sockets.
        return psycopg2.connect(
            host=self.db_cfg["host"],
            port=self.db_cfg["port"],
            dbname=self.db_cfg["name"],
            user=self.db_cfg["user"],
            password=self.db_cfg["password"],
            sslmode=self.db_cfg["ssl_mode"],
            connect_timeout=timeout,
            application_name=f"catalogizer-standin/{VERSION}",
        )

    def connect(self, startup_timeout: float) -> None:
        # Not read from Catalogizer: the stand-in waits for the database so the
        # tests need no ordering; the program waits for Postgres health anyway.
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                self.db().close()
                return
            except psycopg2.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise Fatal(f"database unavailable: {_first_line(exc)}") from exc
                log.warning("database not ready (%s); retrying", _first_line(exc))
                time.sleep(1)

    def migrate(self) -> None:
        # main.go: RunMigrations at every start, before anything is served; there is
        # no down-migration, so an older image keeps the newer schema.
        log.info("running database migrations")
        conn = self.db()
        try:
            with conn, conn.cursor() as cur:
                # Two API versions start side by side during an update; the
                # advisory lock keeps their migrations from racing.
                cur.execute("SELECT pg_advisory_xact_lock(724001)")
                cur.execute(
                    """
                    CREATE TABLE IF NOT EXISTS items (
                        id SERIAL PRIMARY KEY,
                        name TEXT NOT NULL,
                        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                        created_by_version TEXT NOT NULL DEFAULT ''
                    )
                    """
                )
                cur.execute(
                    """
                    CREATE TABLE IF NOT EXISTS users (
                        id SERIAL PRIMARY KEY,
                        username TEXT NOT NULL UNIQUE,
                        password_hash TEXT NOT NULL,
                        salt TEXT NOT NULL,
                        role_id INTEGER NOT NULL,
                        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
                    )
                    """
                )
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                cur.execute(
                    "INSERT INTO schema_migrations (version) VALUES (%s) ON CONFLICT DO NOTHING",
                    (f"standin-{VERSION}",),
                )
        except psycopg2.Error as exc:
            raise Fatal(f"database migrations failed: {_first_line(exc)}") from exc
        finally:
            conn.close()
        log.info("database migrations complete")

    def seed_admin(self) -> None:
        # main.go: seedDefaultAdmin creates the admin (role 1) only when none exists;
        # a failure is a warning, not fatal.
        username = self.cfg["auth"].get("admin_username", "")
        password = self.cfg["auth"].get("admin_password", "")
        salt = secrets.token_hex(16)
        # Catalogizer uses bcrypt; scrypt is the stdlib's comparable KDF and keeps the
        # image free of extra packages. Nothing outside the API reads the hash.
        digest = hashlib.scrypt((password + salt).encode(), salt=salt.encode(), n=2**14, r=8, p=1).hex()
        try:
            conn = self.db()
            try:
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(724002)")
                    cur.execute("SELECT count(*) FROM users WHERE role_id = 1")
                    if cur.fetchone()[0] > 0:
                        return
                    cur.execute(
                        "INSERT INTO users (username, password_hash, salt, role_id) VALUES (%s, %s, %s, 1)",
                        (username, digest, salt),
                    )
            finally:
                conn.close()
        except psycopg2.Error as exc:
            log.warning("could not seed the admin user: %s", _first_line(exc))
            return
        log.info("admin user %r created", username)

    def connect_redis(self, env: dict[str, str]) -> None:
        # main.go: a go-redis client on REDIS_ADDR/REDIS_PASSWORD, pinged once; on
        # failure the API keeps running with in-memory rate limiting.
        addr = env.get("REDIS_ADDR") or GO_REDIS_DEFAULT_ADDR
        host, _, port = addr.rpartition(":")
        client = redis.Redis(
            host=host or "localhost",
            port=go_atoi(port, 6379),
            password=env.get("REDIS_PASSWORD") or None,
            socket_timeout=3,
            socket_connect_timeout=5,
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            log.warning("redis at %s unusable (%s); rate limiting falls back to in-memory", addr, exc)
            return
        log.info("redis at %s connected for rate limiting", addr)
        self.redis = client

    def ping_db(self) -> tuple[bool, str]:
        """internal/metrics/health.go: checkDatabase, a ping on a pooled connection."""
        with self.ping_lock:
            for attempt in (1, 2):
                try:
                    if self.ping_conn is None or self.ping_conn.closed:
                        self.ping_conn = self.db(timeout=DB_PING_TIMEOUT)
                        self.ping_conn.autocommit = True
                    started = time.monotonic()
                    with self.ping_conn.cursor() as cur:
                        cur.execute("SELECT 1")
                        cur.fetchone()
                    return True, f"{(time.monotonic() - started) * 1000:.1f}ms"
                except psycopg2.Error as exc:
                    # A pooled connection can be stale after a Postgres restart; like
                    # database/sql, retry once on a new one before calling it down.
                    with contextlib.suppress(Exception):
                        if self.ping_conn is not None:
                            self.ping_conn.close()
                    self.ping_conn = None
                    if attempt == 2:
                        return False, _first_line(exc)
        return False, "unreachable"

    def check_redis(self) -> str:
        if self.redis is None:
            return "error: not connected (in-memory rate limiting)"
        try:
            self.redis.ping()
            return "ok"
        except redis.RedisError as exc:
            return f"error: {exc}"

    def count(self, method: str, path: str, status: int) -> None:
        label = path if path in ROUTED_PATHS else "other"
        with self.lock:
            self.requests[(method, label, status)] += 1

    def metrics(self) -> str:
        lines = [
            "# HELP catalogizer_http_requests_total Total HTTP requests handled.",
            "# TYPE catalogizer_http_requests_total counter",
        ]
        with self.lock:
            snapshot = sorted(self.requests.items())
        for (method, path, status), n in snapshot:
            lines.append(f'catalogizer_http_requests_total{{method="{method}",path="{path}",status="{status}"}} {n}')
        lines += [
            "# HELP catalogizer_build_info Build information.",
            "# TYPE catalogizer_build_info gauge",
            f'catalogizer_build_info{{version="{VERSION}"}} 1',
        ]
        return "\n".join(lines) + "\n"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


# Routes exactly as registered, per method: Gin keeps one tree per method
# (gin.go: Engine.addRoute), so only these (method, path) pairs are served.
# /api/v1/items is the stand-in's own test route; everything else mirrors main.go.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/health"): "health",
    ("GET", "/health/deep"): "deep_health",
    ("GET", "/metrics"): "metrics",
    ("GET", "/ws"): "websocket",
    ("GET", "/api/v1/items"): "list_items",
    ("POST", "/api/v1/items"): "create_item",
}
ROUTED_PATHS = {path for _, path in ROUTES}


def make_handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self) -> str:
            return f"catalogizer-standin/{VERSION}"

        def log_message(self, format: str, *args: Any) -> None:
            # Request lines are logged by _record with the status and timing.
            pass

        def parse_request(self) -> bool:
            self._started = time.monotonic()
            return super().parse_request()

        # -- Gin's dispatch --------------------------------------------------------
        def _dispatch(self) -> None:
            path = self.path.split("?", 1)[0]
            name = ROUTES.get((self.command, path))
            if name is not None:
                getattr(self, name)()
                return
            # gin.go: handleHTTPRequest. A path registered with a trailing-slash twin
            # is redirected (RedirectTrailingSlash, on by default): 301 for GET, 307
            # for other methods.
            if path != "/" and path.endswith("/") and (self.command, path.rstrip("/")) in ROUTES:
                self._redirect(301 if self.command == "GET" else 307, path.rstrip("/"))
                return
            # Otherwise, whatever other methods the path has, 404 with Gin's plain
            # body: HandleMethodNotAllowed is off by default (gin.go: New), so a HEAD
            # on a GET-only route is "404 page not found", never 405 and never 200.
            self._finish(404, b"404 page not found", "text/plain")

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

        # -- responses -----------------------------------------------------------------
        def _finish(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            # One request per connection keeps graceful shutdown bounded.
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.close_connection = True
            self._record(status)

        def _redirect(self, status: int, location: str) -> None:
            self._finish(status, b"", "text/html; charset=utf-8", {"Location": location})

        def _record(self, status: int) -> None:
            path = self.path.split("?", 1)[0]
            app.count(self.command, path, status)
            elapsed = (time.monotonic() - self._started) * 1000
            log.info(
                "request %s %s status=%d duration_ms=%.1f remote=%s",
                self.command,
                path,
                status,
                elapsed,
                self.client_address[0],
            )

        def _json(self, status: int, payload: Any) -> None:
            self._finish(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

        # -- routes --------------------------------------------------------------------
        def health(self) -> None:
            # main.go: GET /health answers without touching the database.
            if HEALTH_MODE == "broken":
                # Test-only mode for the image tagged :broken (never healthy).
                self._json(500, {"status": "unhealthy"})
                return
            self._json(
                200,
                {
                    "status": "healthy",
                    "time": now_iso(),
                    "version": VERSION,
                    "build_number": "0",
                    "build_date": "unknown",
                },
            )

        def deep_health(self) -> None:
            # main.go: GET /health/deep runs the checker with a 100 ms budget: 503 when
            # the database check fails in time, 200 "degraded" when it is too slow.
            result: dict[str, tuple[bool, str]] = {}
            done = threading.Event()

            def run() -> None:
                result["db"] = app.ping_db()
                done.set()

            threading.Thread(target=run, daemon=True).start()
            in_time = done.wait(DEEP_HEALTH_BUDGET)
            base = {"version": VERSION, "timestamp": now_iso(), "redis": app.check_redis()}
            if not in_time:
                self._json(
                    200,
                    {
                        **base,
                        "status": "degraded",
                        "message": "deep health check exceeded its 100 ms budget",
                        "components": {"timeout": {"status": "degraded"}},
                        "database": "timeout",
                    },
                )
                return
            ok, detail = result["db"]
            component = {"status": "healthy", "latency": detail} if ok else {"status": "unhealthy", "message": detail}
            self._json(
                200 if ok else 503,
                {
                    **base,
                    "status": component["status"],
                    "uptime": f"{time.monotonic() - app.started:.0f}s",
                    "components": {"database": component},
                    # Stand-in extras (the real answer has neither): existing tests and
                    # the rehearsal read these two flat fields.
                    "database": "ok" if ok else f"error: {detail}",
                },
            )

        def metrics(self) -> None:
            # main.go: /metrics (promhttp) on the API's own port, no auth.
            self._finish(200, app.metrics().encode(), "text/plain; version=0.0.4")

        def create_item(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                data = json.loads(self.rfile.read(length) or b"null")
                name = data["name"]
                if not isinstance(name, str) or not name:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                self._json(400, {"error": 'expected JSON body {"name": "<non-empty string>"}'})
                return
            try:
                conn = app.db()
                try:
                    with conn, conn.cursor() as cur:
                        cur.execute(
                            "INSERT INTO items (name, created_by_version) VALUES (%s, %s) RETURNING id, created_at",
                            (name, VERSION),
                        )
                        item_id, created = cur.fetchone()
                finally:
                    conn.close()
            except psycopg2.Error as exc:
                self._json(503, {"error": f"database: {_first_line(exc)}"})
                return
            self._json(201, {"id": item_id, "name": name, "created_at": created.isoformat()})

        def list_items(self) -> None:
            try:
                conn = app.db()
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT id, name, created_at, created_by_version FROM items ORDER BY id")
                        rows = cur.fetchall()
                finally:
                    conn.close()
            except psycopg2.Error as exc:
                self._json(503, {"error": f"database: {_first_line(exc)}"})
                return
            items = [
                {"id": r[0], "name": r[1], "created_at": r[2].isoformat(), "created_by_version": r[3]} for r in rows
            ]
            self._json(200, {"items": items, "count": len(items)})

        def websocket(self) -> None:
            upgrade = self.headers.get("Upgrade", "").lower()
            connection = self.headers.get("Connection", "").lower()
            key = self.headers.get("Sec-WebSocket-Key", "")
            if upgrade != "websocket" or "upgrade" not in connection or not key:
                self._json(400, {"error": "websocket upgrade required"})
                return
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            # One text frame then a close frame: enough for a proxy test to see
            # data flow through an upgraded connection.
            msg = json.dumps({"hello": "catalogizer", "version": VERSION}).encode()
            self.wfile.write(bytes([0x81, len(msg)]) + msg)
            self.wfile.write(bytes([0x88, 0x02, 0x03, 0xE8]))
            self.wfile.flush()
            self.close_connection = True
            self._record(101)

    return Handler


def setup_logging() -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(fmt)
    root.addHandler(out)
    try:
        os.makedirs(os.path.dirname(LOG_FILE), exist_ok=True)
        fh = logging.FileHandler(LOG_FILE)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    except OSError as exc:
        # A read-only or foreign-owned log volume must not stop the API.
        log.warning("cannot write %s (%s); logging to stdout only", LOG_FILE, exc)


def write_port_file(port: int) -> None:
    # main.go: writePortFile; a failure is only a warning.
    try:
        with open(PORT_FILE, "w") as fh:
            fh.write(str(port))
        os.chmod(PORT_FILE, 0o644)
    except OSError as exc:
        log.warning("cannot write %s: %s", PORT_FILE, exc)


def serve(app: App, host: str, port: int) -> None:
    server = ThreadingHTTPServer((host, port), make_handler(app))
    # Let in-flight requests finish on shutdown instead of killing them.
    server.daemon_threads = False
    server.block_on_close = True

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down gracefully", signal.Signals(signum).name)
        # shutdown() waits for serve_forever, which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("listening on %s:%d", host, port)
    server.serve_forever()
    server.server_close()


def main() -> int:
    setup_logging()
    env = dict(os.environ)
    try:
        cfg = load_config(env)
        if cfg["database"]["type"] != "postgres":
            # Stand-in limit, not Catalogizer's: sqlite would need a second backend,
            # and silently ignoring it would make a misconfiguration look healthy.
            raise Fatal(f"DATABASE_TYPE={cfg['database']['type']!r} is not supported by the stand-in (use postgres)")
        if not cfg["auth"].get("jwt_secret"):
            # main.go: no secret configured means a random one per process.
            cfg["auth"]["jwt_secret"] = secrets.token_hex(32)
            log.warning("JWT_SECRET not set: using an ephemeral secret, so every restart logs users out")

        log.info("catalogizer stand-in %s starting (health mode %s)", VERSION, HEALTH_MODE)
        app = App(cfg)
        app.connect(float(env.get("DATABASE_STARTUP_TIMEOUT", "60")))
        app.migrate()
        app.seed_admin()
        # The real API's connection pool is open from start-up on, so its first deep
        # health check pings an existing connection; warm ours the same way.
        app.ping_db()
        app.connect_redis(env)
        # main.go: the challenge service keeps results under data/, the asset store
        # and the TLS certificate cache under cache/; Catalogizer's own default temp
        # dir is $TMPDIR/catalog-api (config.go: getDefaultConfig).
        try_mkdir(os.path.join("data", "challenge_results"), "challenge results")
        try_mkdir(os.path.join("cache", "assets"), "asset store")
        try_mkdir(os.path.join("cache", "tls"), "TLS certificate cache")
        try_mkdir(os.path.join(tempfile.gettempdir(), "catalog-api"), "temporary files")

        host = cfg["server"]["host"]
        port = find_available_port(host, cfg["server"]["port"] if cfg["server"]["port"] > 0 else 8080)
        if port != cfg["server"]["port"]:
            log.warning("port %d is taken: serving on %d instead (see %s)", cfg["server"]["port"], port, PORT_FILE)
        write_port_file(port)
        serve(app, host, port)
    except Fatal as exc:
        log.error("fatal: %s", exc)
        return 1
    with contextlib.suppress(OSError):
        os.remove(PORT_FILE)
    log.info("shutdown complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
