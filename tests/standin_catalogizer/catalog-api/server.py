#!/usr/bin/env python3
"""Stand-in for the Catalogizer Go API, used by the real-Docker tests.

It reads the same environment as Catalogizer, runs a startup "migration",
and serves the endpoints the deploy program and its health checks touch.
Only the stdlib plus psycopg2 and redis (Debian packages in the runtime
image) are used so the image builds offline from the Debian mirror.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg2
import redis

VERSION = os.environ.get("APP_VERSION", "dev")
HEALTH_MODE = os.environ.get("HEALTH_MODE", "ok")
LOG_FILE = os.environ.get("API_LOG_FILE", "/app/logs/api.log")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KNOWN_PATHS = {"/health", "/health/deep", "/metrics", "/api/v1/items", "/ws"}

log = logging.getLogger("catalogizer-standin")


class ConfigError(Exception):
    pass


class Config:
    def __init__(self, env: dict[str, str]) -> None:
        # The real API defaults HOST to localhost, which makes it unreachable
        # from other containers; the tests rely on reproducing that.
        self.host = env.get("HOST", "localhost")
        self.port = _int(env, "PORT", 8080)
        self.db_type = env.get("DATABASE_TYPE", "postgres")
        self.db_host = env.get("DATABASE_HOST", "localhost")
        self.db_port = _int(env, "DATABASE_PORT", 5432)
        self.db_name = env.get("DATABASE_NAME", "catalogizer")
        self.db_user = env.get("DATABASE_USER", "catalogizer")
        self.db_password = env.get("DATABASE_PASSWORD", "")
        self.db_sslmode = env.get("DATABASE_SSL_MODE", "disable")
        self.redis_addr = env.get("REDIS_ADDR", "")
        self.redis_password = env.get("REDIS_PASSWORD", "")
        self.jwt_secret = env.get("JWT_SECRET", "")
        self.admin_username = env.get("ADMIN_USERNAME", "")
        self.admin_password = env.get("ADMIN_PASSWORD", "")
        self.startup_timeout = float(env.get("DATABASE_STARTUP_TIMEOUT", "60"))

    def validate(self) -> None:
        problems = []
        if len(self.jwt_secret) < 32:
            problems.append("JWT_SECRET must be at least 32 characters")
        if not self.admin_username:
            problems.append("ADMIN_USERNAME is required")
        if not self.admin_password:
            problems.append("ADMIN_PASSWORD is required")
        if self.db_type != "postgres":
            # The stand-in only speaks Postgres; silently ignoring sqlite would
            # make a misconfigured deployment look healthy.
            problems.append(f"DATABASE_TYPE={self.db_type!r} is not supported by the stand-in (use postgres)")
        if problems:
            raise ConfigError("; ".join(problems))


def _int(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None


class App:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.lock = threading.Lock()
        self.redis: redis.Redis | None = None
        if cfg.redis_addr:
            host, _, port = cfg.redis_addr.rpartition(":")
            self.redis = redis.Redis(
                host=host or "localhost",
                port=int(port or 6379),
                password=cfg.redis_password or None,
                socket_timeout=2,
                socket_connect_timeout=2,
            )

    def db(self) -> Any:
        # A fresh connection per request: a restarted Postgres must never
        # leave the API holding dead sockets.
        return psycopg2.connect(
            host=self.cfg.db_host,
            port=self.cfg.db_port,
            dbname=self.cfg.db_name,
            user=self.cfg.db_user,
            password=self.cfg.db_password,
            sslmode=self.cfg.db_sslmode,
            connect_timeout=3,
            application_name=f"catalogizer-standin/{VERSION}",
        )

    def migrate(self) -> None:
        deadline = time.monotonic() + self.cfg.startup_timeout
        while True:
            try:
                conn = self.db()
                break
            except psycopg2.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("database not ready (%s); retrying", str(exc).strip().splitlines()[0])
                time.sleep(1)
        try:
            with conn, conn.cursor() as cur:
                # Two API versions can start side by side during an update;
                # the advisory lock keeps their migrations from racing.
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
        finally:
            conn.close()
        log.info("migrations applied")

    def check_db(self) -> str:
        try:
            conn = self.db()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchone()
            finally:
                conn.close()
            return "ok"
        except psycopg2.Error as exc:
            return f"error: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"

    def check_redis(self) -> str:
        if self.redis is None:
            return "error: REDIS_ADDR not set"
        try:
            self.redis.ping()
            return "ok"
        except redis.RedisError as exc:
            return f"error: {exc}"

    def count(self, method: str, path: str, status: int) -> None:
        label = path if path in KNOWN_PATHS else "other"
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


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def make_handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self) -> str:
            return f"catalogizer-standin/{VERSION}"

        def log_message(self, format: str, *args: Any) -> None:
            # Request lines are logged by _finish with the status and timing.
            pass

        def _finish(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            # One request per connection keeps graceful shutdown bounded.
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.close_connection = True
            self._record(status)

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
            self._finish(status, json.dumps(payload).encode(), "application/json")

        def parse_request(self) -> bool:
            self._started = time.monotonic()
            return super().parse_request()

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                if HEALTH_MODE == "broken":
                    self._json(500, {"status": "unhealthy"})
                else:
                    self._json(200, {"status": "healthy", "time": now_iso(), "version": VERSION})
            elif path == "/health/deep":
                db_state = app.check_db()
                payload = {
                    "status": "healthy" if db_state == "ok" else "unhealthy",
                    "database": db_state,
                    "redis": app.check_redis(),
                    "version": VERSION,
                }
                self._json(200 if db_state == "ok" else 503, payload)
            elif path == "/metrics":
                self._finish(200, app.metrics().encode(), "text/plain; version=0.0.4")
            elif path == "/api/v1/items":
                self._list_items()
            elif path == "/ws":
                self._websocket()
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/api/v1/items":
                self._json(404, {"error": "not found"})
                return
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
                self._json(503, {"error": f"database: {str(exc).strip()}"})
                return
            self._json(201, {"id": item_id, "name": name, "created_at": created.isoformat()})

        def _list_items(self) -> None:
            try:
                conn = app.db()
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT id, name, created_at, created_by_version FROM items ORDER BY id")
                        rows = cur.fetchall()
                finally:
                    conn.close()
            except psycopg2.Error as exc:
                self._json(503, {"error": f"database: {str(exc).strip()}"})
                return
            items = [
                {"id": r[0], "name": r[1], "created_at": r[2].isoformat(), "created_by_version": r[3]} for r in rows
            ]
            self._json(200, {"items": items, "count": len(items)})

        def _websocket(self) -> None:
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


def main() -> int:
    setup_logging()
    try:
        cfg = Config(dict(os.environ))
        cfg.validate()
    except ConfigError as exc:
        log.error("configuration invalid: %s", exc)
        return 1

    log.info("catalogizer stand-in %s starting (health mode %s)", VERSION, HEALTH_MODE)
    app = App(cfg)
    try:
        app.migrate()
    except psycopg2.Error as exc:
        log.error("database unavailable at %s:%s: %s", cfg.db_host, cfg.db_port, str(exc).strip())
        return 1

    # Like the real API, Redis is optional: warn and keep going.
    redis_state = app.check_redis()
    if redis_state != "ok":
        log.warning("redis unavailable (%s); continuing without it", redis_state)

    server = ThreadingHTTPServer((cfg.host, cfg.port), make_handler(app))
    # Let in-flight requests finish on shutdown instead of killing them.
    server.daemon_threads = False
    server.block_on_close = True

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down gracefully", signal.Signals(signum).name)
        # shutdown() waits for serve_forever, which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log.info("listening on %s:%d", cfg.host, cfg.port)
    server.serve_forever()
    server.server_close()
    log.info("shutdown complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
