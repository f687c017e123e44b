"""Grafana stand-in (see the Dockerfile): the parts of Grafana the deployment depends on.

At start it loads every provisioning file in /etc/grafana/provisioning/datasources (YAML with
`apiVersion` and `datasources`, as Grafana reads them); a file that does not parse or has no
datasource makes it exit, as a broken provisioning file makes Grafana fail its start. It needs
GF_SECURITY_ADMIN_PASSWORD, writes a marker into /var/lib/grafana (its data volume), and serves:
  GET /api/health       -> 200 {"database": "ok", "version": "stand-in"}
  GET /api/datasources  -> the provisioned datasources, with basic auth as the admin user only.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

PROVISIONING = Path("/etc/grafana/provisioning/datasources")
DATA = Path("/var/lib/grafana")


def load_datasources() -> list[dict]:
    found: list[dict] = []
    for path in sorted(PROVISIONING.glob("*.y*ml")):
        document = yaml.safe_load(path.read_text())
        if not isinstance(document, dict) or not isinstance(document.get("datasources"), list):
            raise SystemExit(f"provisioning file {path} has no datasources list")
        for source in document["datasources"]:
            if not source.get("name") or not source.get("type") or not source.get("url"):
                raise SystemExit(f"provisioning file {path}: a datasource needs name, type and url")
            found.append(source)
    return found


def main() -> None:
    user = os.environ.get("GF_SECURITY_ADMIN_USER", "admin")
    password = os.environ.get("GF_SECURITY_ADMIN_PASSWORD")
    if not password:
        raise SystemExit("GF_SECURITY_ADMIN_PASSWORD is not set")
    datasources = load_datasources()
    (DATA / "grafana-standin.started").write_text(str(len(datasources)))
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/api/health":
                self._send(200, {"database": "ok", "version": "stand-in"})
            elif self.path == "/api/datasources":
                if self.headers.get("Authorization") != expected:
                    self._send(401, {"message": "Unauthorized"})
                else:
                    self._send(200, datasources)
            else:
                self._send(404, {"message": "Not found"})

        def log_message(self, fmt: str, *args: object) -> None:
            sys.stderr.write("grafana-standin: " + (fmt % args) + "\n")

    sys.stderr.write(f"grafana-standin: {len(datasources)} datasource(s) provisioned\n")
    ThreadingHTTPServer(("0.0.0.0", 3000), Handler).serve_forever()


if __name__ == "__main__":
    main()
