#!/usr/bin/env python3
"""nginx's configuration, applied by reload: stage, `nginx -t`, flip, SIGHUP, confirm.

The configuration lives in a volume that the nginx container mounts read-only at
/etc/nginx/live. It holds two slots, `a` and `b`, each a complete configuration
(nginx.conf, tls/cert.pem, tls/key.pem), and `current`, a symlink to the live slot.
nginx runs with `-c /etc/nginx/live/current/nginx.conf` and the file's relative paths
resolve against that folder, so flipping the symlink and sending SIGHUP switches
everything at once: traffic to a new API version, a renewed certificate, new limits.

    apply (default):
      1. write the new files into the idle slot, from a throwaway container of the nginx
         image with the volume (files arrive as a tar on stdin, never on a command line);
      2. `nginx -t` there: on failure nothing changed, exit 1 with nginx's own message;
      3. flip `current`, set or clear the maintenance flag (same container), SIGHUP nginx;
      4. wait until its /nginx-health names the new config and /health answers 200 through
         it; otherwise flip back, SIGHUP again, exit 1. Without a running nginx container
         (first deploy) steps 3-4 only flip: the container starts on that configuration.
    maintenance on|off: set or clear the maintenance flag alone (the restore hook).

env: NGINX_VOLUME, NGINX_IMAGE, NGINX_CONTAINER, NGINX_CONF, NGINX_CONFIG_ID, NGINX_HTTP_PORT, NGINX_SERVER_NAME,
MAINTENANCE (true/false), PROXY_TIMEOUT, TLS_CERT_PEM and TLS_KEY_PEM (secret; absent with TLS off),
NGINX_CERTS_VOLUME (tls.mode=acme: the ACME sidecar's certificates, seeded with TLS_* before the first).
stdout is one JSON object: configId, slot, reloaded, maintenance, seconds.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hooklib import HookError, container_running, docker, emit, env, env_int, fail, scrub

LIVE_DIR = "/etc/nginx/live"
MAINTENANCE_FLAG = "maintenance.on"
SLOTS = ("a", "b")
# components/acme.py CERTS_DIR: where the ACME sidecar's certificates are, in nginx and here.
CERTS_DIR = "/etc/nginx/acme-certs"

# Run by /bin/sh in the throwaway container; its only arguments are fixed words of ours.
STAGE = """set -eu
live=/etc/nginx/live
current=$(readlink "$live/current" || true)
if [ "$current" = a ]; then next=b; else next=a; fi
rm -rf "$live/$next.new"
mkdir -p "$live/$next.new"
tar -x -C "$live/$next.new" -f -
if [ -d "$live/$next.new/tls" ]; then chmod 700 "$live/$next.new/tls"; chmod 600 "$live/$next.new/tls/key.pem"; fi
certs=/etc/nginx/acme-certs
if [ "$2" = acme ] && [ ! -e "$certs/current/fullchain.pem" ]; then
  # tls.mode=acme before the first certificate: the bootstrap pair serves until the ACME
  # sidecar installs the real one into a slot of its own (scripts/acme_client.py).
  rm -rf "$certs/bootstrap"
  mkdir -p "$certs/bootstrap"
  cp "$live/$next.new/tls/cert.pem" "$certs/bootstrap/fullchain.pem"
  (umask 077; cp "$live/$next.new/tls/key.pem" "$certs/bootstrap/key.pem")
  ln -sfn bootstrap "$certs/current"
fi
nginx -t -q -c "$live/$next.new/nginx.conf"
rm -rf "$live/$next"
mv "$live/$next.new" "$live/$next"
# -n replaces the link itself; nginx reads it only on the SIGHUP sent after this.
ln -sfn "$next" "$live/current"
case "$1" in
  on) : > "$live/maintenance.on" ;;
  off) rm -f "$live/maintenance.on" ;;
esac
echo "${current:-none} $next"
"""
FLIP = """set -eu
live=/etc/nginx/live
# -n replaces the link itself; nginx reads it only on the SIGHUP sent after this.
ln -sfn "$1" "$live/current"
case "$2" in
  on) : > "$live/maintenance.on" ;;
  off) rm -f "$live/maintenance.on" ;;
esac
"""
FLAG = """set -eu
case "$1" in
  on) : > /etc/nginx/live/maintenance.on ;;
  off) rm -f /etc/nginx/live/maintenance.on ;;
esac
"""


def in_volume(script: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Runs `script` in a throwaway container of the nginx image with the config volume (and,
    with tls.mode=acme, the served-certificates volume nginx.conf names)."""
    argv = ["run", "--rm", "--network", "none", "--volume", f"{env('NGINX_VOLUME')}:{LIVE_DIR}"]
    certs = os.environ.get("NGINX_CERTS_VOLUME")
    if certs:
        argv += ["--volume", f"{certs}:{CERTS_DIR}"]
    argv += ["--entrypoint", "/bin/sh"]
    if stdin is not None:
        argv.append("--interactive")
    argv += ["--", env("NGINX_IMAGE"), "-c", script, "sh", *args]
    return subprocess.run(["docker", *argv], input=stdin, capture_output=True, timeout=120, check=False)


def bundle(conf: str, cert: str | None, key: str | None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        files: list[tuple[str, str, int]] = [("nginx.conf", conf, 0o644)]
        if cert is not None and key is not None:
            files += [("tls/cert.pem", cert, 0o644), ("tls/key.pem", key, 0o600)]
        for name, text, mode in files:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def stage(conf: str, cert: str | None, key: str | None, maintenance: str) -> tuple[str, str]:
    """Writes and tests the idle slot, then makes it current; returns (previous slot or 'none', new slot)."""
    acme = "acme" if os.environ.get("NGINX_CERTS_VOLUME") else "none"
    result = in_volume(STAGE, maintenance, acme, stdin=bundle(conf, cert, key))
    if result.returncode != 0:
        message = scrub(result.stderr.decode(errors="replace")).strip()
        raise HookError(f"the new nginx configuration was refused, nothing changed:\n{message}")
    previous, staged = result.stdout.decode().split()
    return previous, staged


def flip(slot: str, maintenance: str) -> None:
    result = in_volume(FLIP, slot, maintenance)
    if result.returncode != 0:
        raise HookError(f"cannot switch nginx to slot {slot}: {scrub(result.stderr.decode()).strip()}")


def reload(container: str) -> None:
    # nginx runs as PID 1 of its container: SIGHUP makes its master re-read the -c file.
    result = docker(["kill", "--signal", "HUP", "--", container], timeout=30)
    if result.returncode != 0:
        raise HookError(f"cannot reload nginx in {container}: {scrub(result.stderr.decode()).strip()}")


def fetch(container: str, port: int, path: str) -> tuple[bool, str]:
    # The site's own name: the default server drops any other Host with 444 (rendering/nginx_servers.py).
    host = ["--header", f"Host: {os.environ['NGINX_SERVER_NAME']}"] if os.environ.get("NGINX_SERVER_NAME") else []
    result = docker(
        ["exec", container, "wget", "-q", *host, "-O", "-", "-T", "5", f"http://127.0.0.1:{port}{path}"], timeout=15
    )
    return result.returncode == 0, (result.stdout or result.stderr).decode(errors="replace").strip()


def confirm(container: str, port: int, config_id: str, timeout: float) -> str | None:
    """None once nginx serves `config_id` and /health through it answers; else why not."""
    deadline = time.monotonic() + timeout
    why = "no answer yet"
    while time.monotonic() < deadline:
        ok, answer = fetch(container, port, "/nginx-health")
        if not ok or answer != f"ok {config_id}":
            why = f"/nginx-health answered {answer[:120]!r}, not 'ok {config_id}'"
        else:
            ok, answer = fetch(container, port, "/health")
            if ok:
                return None
            why = f"/health through nginx failed: {answer[:200]}"
        time.sleep(0.5)
    return why


def apply() -> dict[str, object]:
    started = time.monotonic()
    container, config_id = env("NGINX_CONTAINER"), env("NGINX_CONFIG_ID")
    maintenance = "on" if env("MAINTENANCE", "false") == "true" else "off"
    previous, staged = stage(
        env("NGINX_CONF"), os.environ.get("TLS_CERT_PEM"), os.environ.get("TLS_KEY_PEM"), maintenance
    )
    running, _ = container_running(container)
    if running:
        reload(container)
        why = confirm(container, env_int("NGINX_HTTP_PORT", 80), config_id, env_int("PROXY_TIMEOUT", 120))
        if why is not None:
            if previous in SLOTS:
                flip(previous, "keep")
                reload(container)
            raise HookError(f"nginx did not take the new configuration ({why}); the previous one serves again")
    return {
        "configId": config_id,
        "slot": staged,
        "reloaded": running,
        "maintenance": maintenance == "on",
        "seconds": round(time.monotonic() - started, 3),
    }


def set_maintenance(state: str) -> None:
    result = in_volume(FLAG, state)
    if result.returncode != 0:
        raise HookError(f"cannot turn maintenance {state}: {scrub(result.stderr.decode()).strip()}")


def main() -> None:
    try:
        if sys.argv[1:2] == ["maintenance"] and sys.argv[2:] in (["on"], ["off"]):
            set_maintenance(sys.argv[2])
            emit({"maintenance": sys.argv[2] == "on"})
            return
        if sys.argv[1:]:
            raise HookError("usage: proxy_config.py [maintenance on|off]")
        emit(apply())
    except HookError as exc:
        fail(f"proxy configuration failed: {exc}")
    except subprocess.TimeoutExpired as exc:
        fail(f"proxy configuration failed: docker {exc.cmd[1]} timed out after {exc.timeout:.0f}s")


if __name__ == "__main__":
    main()
