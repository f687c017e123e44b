"""Off-host repositories for the real tests: a local folder, an SFTP host, a REST server.

The SFTP host is a container running Debian's openssh-server (key auth only) on a network of
the test's own; the REST server is Debian's rclone (`rclone serve restic`). Both publish on
127.0.0.1 only (DockerScope). Every hook runs with a `restic` wrapper first on PATH that logs
its argv, so tests can prove no secret was ever on a command line.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from docker.models.containers import Container
from docker_harness import DockerScope
from images import tags
from services import PG_DB, PG_USER, SCRIPTS

SFTP_ALIAS = "cz-sftp"


@dataclass
class Target:
    """One repository and how a hook reaches it."""

    kind: str
    repository: str
    work: Path
    # For sftp: a private home with .ssh/ that ssh(1) reads from the user's home directory,
    # which it takes from the password database, not $HOME; it is bind-mounted over /root in a
    # mount namespace of the hook's own (unshare(1)), so the host's /root/.ssh is never touched.
    ssh_home: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    argv_log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.argv_log = self.work / "restic-argv.log"
        wrapper_dir = self.work / "bin"
        wrapper_dir.mkdir(parents=True, exist_ok=True)
        real = "/usr/bin/restic"
        wrapper = wrapper_dir / "restic"
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(self.argv_log))}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)

    def run(
        self, script: Path, env: dict[str, str], *args: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """The hook with only the environment the program's Command hands it (plus PATH)."""
        full = {"PATH": f"{self.work / 'bin'}:{os.environ['PATH']}", **self.env, **env}
        argv = [sys.executable, str(script), *args]
        if self.ssh_home is not None:
            # The hooks use the standard library only; Debian's python3 lives outside /root, which
            # the bind mount below hides (the virtualenv's interpreter may live under it).
            argv = ["/usr/bin/python3", str(script), *args]
            argv = [
                "unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /root && exec "$@"', str(self.ssh_home), *argv,
            ]  # fmt: skip
        return subprocess.run(argv, env=full, capture_output=True, text=True, timeout=timeout, check=False)

    def restic(self, *args: str, password: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """restic as an operator would run it by hand, to inspect the repository."""
        env = {"PATH": os.environ["PATH"], "RESTIC_REPOSITORY": self.repository, "RESTIC_PASSWORD": password}
        argv = ["restic", "--no-cache", *args]
        if self.ssh_home is not None:
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" /root && exec "$@"', str(self.ssh_home), *argv]  # fmt: skip
        return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def local_target(work: Path) -> Target:
    return Target("local", str(work / "repository"), work)


def rest_target(scope: DockerScope, work: Path) -> Target:
    server = scope.container(
        tags.RCLONE,
        "rest",
        # rclone serve restic: "--addr IPaddress:Port or :Port to bind server to" (rclone docs).
        command=["serve", "restic", "--addr", ":8000", "/data"],
        ports={8000: None},
    )
    port = scope.host_port(server, 8000)
    wait_for_answer(port, b"HTTP/")
    return Target("rest", f"rest:http://127.0.0.1:{port}/", work)


def sftp_target(scope: DockerScope, work: Path) -> Target:
    home = work / "home"
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    key = ssh_dir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    server: Container = scope.container(
        tags.SFTP,
        "sftp",
        network=scope.network("sftp-net"),
        files={"/root/.ssh/authorized_keys": (key.with_suffix(".pub").read_text(), 0o600)},
        ports={22: None},
    )
    port = scope.host_port(server, 22)
    rc, host_key = scope.exec(server, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
    assert rc == 0, host_key
    (ssh_dir / "known_hosts").write_text(f"{SFTP_ALIAS} {' '.join(host_key.split()[:2])}\n")
    # ssh_config(5): the host's key is checked strictly against our known_hosts under its alias.
    (ssh_dir / "config").write_text(
        f"Host {SFTP_ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  HostKeyAlias {SFTP_ALIAS}\n"
        "  IdentityFile /root/.ssh/id_ed25519\n  IdentitiesOnly yes\n  BatchMode yes\n"
        "  StrictHostKeyChecking yes\n  UserKnownHostsFile /root/.ssh/known_hosts\n"
    )
    for path in ssh_dir.iterdir():
        path.chmod(0o600)
    wait_for_answer(port, b"SSH-")
    return Target("sftp", f"sftp:{SFTP_ALIAS}:/srv/restic-repository", work, ssh_home=home)


def wait_for_answer(port: int, greeting: bytes, timeout: float = 30) -> None:
    """Until the server itself answers: docker-proxy accepts on the published port before the
    process in the container listens, so a bare connect proves nothing."""
    deadline = time.monotonic() + timeout
    last = b""
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(2)
            try:
                probe.connect(("127.0.0.1", port))
                if greeting.startswith(b"HTTP"):
                    probe.sendall(b"GET / HTTP/1.0\r\n\r\n")
                last = probe.recv(64)
                if last.startswith(greeting):
                    return
            except OSError:
                pass
        time.sleep(0.3)
    raise TimeoutError(f"127.0.0.1:{port} did not answer {greeting!r} within {timeout}s (last {last!r})")


def hook_env(pg: Container, pg_password: str, backup_dir: Path, target: Target, repo_password: str, **extra: str):
    """What components/backup.py hands scripts/backup.py with an off-host repository."""
    return {
        "PG_CONTAINER": pg.name,
        "PGUSER": PG_USER,
        "PGDATABASE": PG_DB,
        "PGPASSWORD": pg_password,
        "BACKUP_DIR": str(backup_dir),
        "BACKUP_KEEP": "10",
        "STACK_NAME": "cztest",
        "RESTIC_REPOSITORY": target.repository,
        "RESTIC_PASSWORD": repo_password,
        **extra,
    }


def preflight_env(backup_dir: Path, target: Target, repo_password: str) -> dict[str, str]:
    return {
        "PREFLIGHT_MIN_FREE_GB": "0",
        "BACKUP_DIR": str(backup_dir),
        "STACK_LABEL": "cztest",
        "RESTIC_REPOSITORY": target.repository,
        "RESTIC_PASSWORD": repo_password,
    }


BACKUP = SCRIPTS / "backup.py"
RESTORE = SCRIPTS / "restore.py"
PREFLIGHT = SCRIPTS / "preflight.py"
DRILL = SCRIPTS / "restore_drill.py"
