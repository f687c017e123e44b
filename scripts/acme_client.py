#!/usr/bin/env python3
"""The ACME sidecar: obtains and renews nginx's certificate with lego, and applies it by reload.

Runs inside the sidecar container (dockerfiles/acme/Dockerfile), which shares nginx's network
and PID namespaces: 127.0.0.1:443 is nginx, and PID 1 is nginx's master process.

    loop      ACME_FIRST_CHECK_SECONDS after the start, then every ACME_CHECK_SECONDS (twice
              a day): renew when the certificate is within ACME_RENEW_DAYS of expiry; the
              result is kept for --check.
    issue     once, now (the deploy hook scripts/acme_issue.py runs it with `docker exec`):
              obtain a certificate if this ACME server issued none yet, renew if due (asking
              the server only then), and make sure nginx serves it.
    renew     like issue, but always asks for a new certificate (the operator's forced renewal).
    --check   the container's health check: exit 1 when the last attempt failed.

Applying a certificate, with nothing replaced:
  1. lego writes it under ACME_PATH (its account key stays there, 0600, this volume only);
  2. the chain and key are copied to the idle slot (a/b) of ACME_CERTS, which nginx mounts
     read-only; `nginx -t` loads exactly that pair with a minimal test configuration;
  3. `current` is flipped to the slot, nginx's master gets SIGHUP (a graceful reload: old
     workers finish their requests, nothing is dropped);
  4. a TLS handshake to 127.0.0.1 must present the new leaf; otherwise `current` is flipped
     back and nginx reloaded again. The previous certificate serves whenever anything fails.

stdout of issue/renew is one JSON object: status, renewed (nginx got a new certificate), asked
(the ACME server was asked), notAfter, serial, sha256, certificate.
A failure exits 1 with lego's own account of the ACME server's answer (DNS, challenge, rate limit).
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hooklib import HookError, env

# lego renews only when fewer days than this are left (cmd_renew.go needRenewal); a forced
# renewal passes a horizon no certificate reaches.
FORCE_DAYS = 36500
LOCK_FILE = "/tmp/acme.lock"
STATUS_FILE = "/tmp/acme-status.json"
# lego logs its progress, then the ACME problem (type and detail) or its own failure; those
# lines are the reason, else the last few of its log.
REASON_MARKERS = ("error", "could not", "failed", "unable")
REASON_LINES = 12


class AcmeError(HookError):
    """A failed attempt; the message is for the operator and holds no key material."""


def paths() -> tuple[Path, Path, str]:
    """(lego's --path, the served-certificates folder, the domain).

    lego keeps one `certificates/` folder whatever the server (cmd/certs_storage.go), so each
    ACME directory gets a folder of its own: after a switch (staging to production, say) the
    new server issues a certificate of its own instead of "renewing" the other's."""
    server_key = hashlib.sha256(env("ACME_SERVER").encode()).hexdigest()[:16]
    return Path(env("ACME_PATH")) / server_key, Path(env("ACME_CERTS")), env("ACME_DOMAIN")


def lego_argv(command: str, days: int | None) -> list[str]:
    """lego's global flags (cmd/flags.go) then the command; nothing secret is on it."""
    lego_path, _, domain = paths()
    argv = [
        "lego",
        "--accept-tos",
        "--email",
        env("ACME_EMAIL"),
        "--server",
        env("ACME_SERVER"),
        "--path",
        str(lego_path),
        "--domains",
        domain,
        "--key-type",
        "ec256",
        # HTTP-01 through nginx: lego writes the token under the shared webroot
        # (providers/http/webroot: <webroot>/.well-known/acme-challenge/<token>, 0644).
        "--http",
        "--http.webroot",
        env("ACME_WEBROOT"),
        command,
    ]
    if command == "renew":
        assert days is not None
        argv += ["--days", str(days)]
        # lego sleeps up to 8 minutes before a renewal when stdout is no terminal
        # (cmd_renew.go, "random delay"); the loop keeps it, a deploy hook must not wait for it.
        if os.environ.get("ACME_RANDOM_SLEEP") != "true":
            argv.append("--no-random-sleep")
    return argv


def lego_env() -> dict[str, str]:
    env_vars = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
    bundle = os.environ.get("ACME_CA_BUNDLE_PEM")
    if bundle:
        # LEGO_CA_CERTIFICATES: a PEM file lego trusts for the ACME server's HTTPS
        # (lego/client_config.go initCertPool) instead of the system pool.
        path = Path("/tmp/acme-ca-bundle.pem")
        path.write_text(bundle)
        env_vars["LEGO_CA_CERTIFICATES"] = str(path)
    return env_vars


def due(chain: str) -> bool:
    """True when the leaf expires within ACME_RENEW_DAYS (openssl x509 -checkend exits 1)."""
    seconds = int(env("ACME_RENEW_DAYS", "30")) * 86400
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-checkend", str(seconds)],
        input=leaf(chain),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode != 0


def run_lego(force: bool) -> None:
    lego_path, _, domain = paths()
    issued = lego_path / "certificates" / f"{domain}.crt"
    if issued.exists():
        argv = lego_argv("renew", FORCE_DAYS if force else int(env("ACME_RENEW_DAYS", "30")))
    else:
        argv = lego_argv("run", None)
    result = subprocess.run(argv, env=lego_env(), capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        marked = [line for line in lines if any(m in line.lower() for m in REASON_MARKERS)]
        reason = "\n".join((marked or lines)[-REASON_LINES:]) or f"lego exited {result.returncode}"
        raise AcmeError(f"the ACME server did not issue a certificate for {domain}:\n{reason}")


def leaf(pem: str) -> str:
    """The first certificate of a chain, in PEM."""
    end = "-----END CERTIFICATE-----"
    index = pem.find(end)
    if index < 0:
        raise AcmeError("the certificate file holds no PEM certificate")
    return pem[: index + len(end)] + "\n"


def fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf(pem))).hexdigest()


def served_fingerprint(domain: str, port: int) -> str:
    """sha256 of the leaf nginx presents for `domain` right now (no verification: identity only)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def nginx_test(slot_dir: Path) -> None:
    """`nginx -t` on the new pair alone: the rest of nginx.conf did not change, and the full
    file's log and temp paths are not this container's to open. Run as this container's root
    without capabilities, it writes only under /tmp (the tmpfs)."""
    work = Path(tempfile.mkdtemp(prefix="nginx-test-", dir="/tmp"))
    conf = work / "nginx.conf"
    conf.write_text(
        # `user root`: as root, nginx -t chowns its temp folders to the worker user
        # (ngx_create_paths); to root, the owner they already have, needs no CAP_CHOWN.
        f"""user root;
error_log stderr;
pid {work}/nginx.pid;
events {{}}
http {{
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    access_log off;
    server {{
        listen 127.0.0.1:1 ssl;
        ssl_certificate {slot_dir}/fullchain.pem;
        ssl_certificate_key {slot_dir}/key.pem;
    }}
}}
"""
    )
    try:
        result = subprocess.run(
            ["nginx", "-t", "-q", "-p", str(work), "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result.returncode != 0:
        raise AcmeError(f"nginx refused the new certificate, nothing changed:\n{result.stderr.strip()}")


def reload_nginx() -> None:
    # PID 1 of the shared PID namespace is nginx's master (components/acme.py sets pid_mode);
    # SIGHUP makes it re-read its configuration and certificates and replace its workers
    # gracefully (nginx docs, "Controlling nginx").
    # nginx retitles its master "nginx: master process <argv>" (ngx_setproctitle).
    cmdline = Path("/proc/1/cmdline").read_bytes().split(b"\0")[0]
    if not cmdline.startswith(b"nginx: master process"):
        raise AcmeError(f"PID 1 is {cmdline.decode(errors='replace')!r}, not nginx: is the PID namespace shared?")
    os.kill(1, signal.SIGHUP)


def flip(certs: Path, slot: str) -> None:
    link = certs / "current.new"
    link.unlink(missing_ok=True)
    link.symlink_to(slot)
    # rename(2) replaces `current` atomically: nginx sees the old or the new slot, never none.
    link.replace(certs / "current")


def confirm(domain: str, port: int, wanted: str, timeout: float) -> str | None:
    """None once nginx presents `wanted`; else what it presents."""
    deadline = time.monotonic() + timeout
    seen = "no answer"
    while time.monotonic() < deadline:
        try:
            seen = served_fingerprint(domain, port)
            if seen == wanted:
                return None
        except OSError as exc:
            seen = f"no TLS answer ({exc})"
        time.sleep(0.2)
    return seen


def install(chain: str, key: str) -> None:
    """Steps 2-4 of the module docstring."""
    _, certs, domain = paths()
    port = int(env("ACME_HTTPS_PORT", "443"))
    current = certs / "current"
    previous = os.readlink(current) if current.is_symlink() else None
    slot = "b" if previous == "a" else "a"
    slot_dir = certs / slot
    shutil.rmtree(slot_dir, ignore_errors=True)
    slot_dir.mkdir(mode=0o755)
    (slot_dir / "fullchain.pem").write_text(chain)
    # Root's, 0600: nginx's master (root) reads it before it starts its workers.
    fd = os.open(slot_dir / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    nginx_test(slot_dir)
    flip(certs, slot)
    reload_nginx()
    seen = confirm(domain, port, fingerprint(chain), float(env("ACME_CONFIRM_SECONDS", "30")))
    if seen is not None:
        if previous is not None:
            flip(certs, previous)
            reload_nginx()
        raise AcmeError(f"nginx did not serve the new certificate (it presents {seen}); the previous one serves again")


def describe(chain: str) -> dict[str, object]:
    """notAfter and serial of the leaf, as openssl x509 reads them (the image installs openssl)."""
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-serial"],
        input=leaf(chain),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise AcmeError(f"cannot read the issued certificate: {result.stderr.strip()}")
    fields = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    # openssl prints e.g. "notAfter=Feb 27 09:12:00 2027 GMT".
    not_after = datetime.datetime.strptime(fields["notAfter"], "%b %d %H:%M:%S %Y %Z")
    return {
        "notAfter": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "serial": fields["serial"].lower(),
        "sha256": fingerprint(chain),
        "certificate": chain,
    }


def attempt(force: bool) -> dict[str, object]:
    """Obtain or renew, then make nginx serve lego's certificate if it does not already."""
    lego_path, certs, domain = paths()
    with open(LOCK_FILE, "w") as lock:
        # One attempt at a time: the loop and a deploy hook's `docker exec` may meet here.
        fcntl.flock(lock, fcntl.LOCK_EX)
        issued = lego_path / "certificates" / f"{domain}.crt"
        # Nothing due: the ACME server is not asked at all, so an outage of it costs nothing
        # until a renewal is due (and then 30 days of retries before the certificate expires).
        asked = force or not issued.exists() or due(issued.read_text())
        if asked:
            run_lego(force)
        chain = issued.read_text()
        key = (lego_path / "certificates" / f"{domain}.key").read_text()
        served = certs / "current" / "fullchain.pem"
        renewed = not served.exists() or fingerprint(served.read_text()) != fingerprint(chain)
        if renewed:
            install(chain, key)
        else:
            # Already in the slot; make sure nginx presents it (e.g. after a failed reload).
            seen = confirm(domain, int(env("ACME_HTTPS_PORT", "443")), fingerprint(chain), 10)
            if seen is not None:
                reload_nginx()
                if confirm(domain, int(env("ACME_HTTPS_PORT", "443")), fingerprint(chain), 30) is not None:
                    raise AcmeError("nginx does not present the issued certificate after a reload")
    return {"status": "ok", "renewed": renewed, "asked": asked, **describe(chain)}


def record(status: dict[str, object]) -> None:
    kept = {k: v for k, v in status.items() if k != "certificate"}
    kept["at"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    Path(STATUS_FILE).write_text(json.dumps(kept))


def run_once(force: bool, with_certificate: bool = True) -> int:
    """One attempt; stdout is its JSON (the deploy hook exports the certificate, the loop's
    log does not need it), a failure goes to stderr and into the status --check reads."""
    try:
        status = attempt(force)
    except (HookError, OSError, subprocess.TimeoutExpired) as exc:
        record({"status": "failed", "reason": str(exc)})
        print(f"acme: {exc}", file=sys.stderr, flush=True)
        return 1
    record(status)
    shown = status if with_certificate else {k: v for k, v in status.items() if k != "certificate"}
    print(json.dumps(shown), flush=True)
    return 0


def loop() -> None:
    interval = int(env("ACME_CHECK_SECONDS", "43200"))
    # The first check comes a while after the start: on a deploy the acme-issue hook asks at
    # once (and a failing attempt here would fail the container's health wait instead of
    # naming the ACME server's reason); after a host restart a renewal due is still made
    # then, not only once the host has run `interval` without a restart.
    time.sleep(int(env("ACME_FIRST_CHECK_SECONDS", "600")))
    # lego's own random delay spreads the renewals of many hosts over the CA (cmd_renew.go);
    # on unless ACME_RANDOM_SLEEP=false (a test that cannot wait 8 minutes).
    os.environ["ACME_RANDOM_SLEEP"] = "false" if os.environ.get("ACME_RANDOM_SLEEP") == "false" else "true"
    while True:
        code = run_once(force=False, with_certificate=False)
        print(f"acme: scheduled check {'ok' if code == 0 else 'failed'}", file=sys.stderr, flush=True)
        time.sleep(interval)


def check() -> int:
    try:
        status = json.loads(Path(STATUS_FILE).read_text())
    except FileNotFoundError:
        return 0
    if status.get("status") != "ok":
        print(f"last ACME attempt failed at {status.get('at')}: {status.get('reason')}", flush=True)
        return 1
    return 0


def main() -> None:
    command = sys.argv[1:]
    if command == ["loop"]:
        loop()
    elif command == ["issue"]:
        sys.exit(run_once(force=False))
    elif command == ["renew"]:
        sys.exit(run_once(force=True))
    elif command == ["--check"]:
        sys.exit(check())
    else:
        print("usage: acme_client.py loop|issue|renew|--check", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
