"""Off-host copies: every verified dump pushed to a restic repository, pruned and checked there.

restic (Debian's package) does the encryption, transport and integrity; this module only
drives its CLI. Everything secret reaches restic through the environment restic documents
(restic docs, 075_scripting "Environment Variables"): RESTIC_REPOSITORY, RESTIC_PASSWORD and
the backend's own variables (AWS_*, ...). None of them is ever on an argv or in our output.

Snapshots of a stack carry the tags `stack=<stack>` and `kind=<pre-update|scheduled>` and the
host name `<stack>`; every listing, `forget` and `latest` is filtered by the stack tag, so
another stack sharing the repository is never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hooklib import HookError, env_int, scrub

if TYPE_CHECKING:
    from backup import BackupResult

RESTIC = "restic"
# Folder under BACKUP_DIR for restic's local cache (restic docs, "Caching"): kept beside the
# dumps so neither the operator's home nor the scheduler's image fills up.
CACHE_FOLDER = ".restic-cache"
TIMEOUT = 6 * 3600
# The scheduler passes BACKUP_CHECK_READ_DATA, e.g. 10%: restic check --help, "--read-data-subset
# ... 'x%' ... for a random subset".
SHADOWING_ENV = ("RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND", "RESTIC_REPOSITORY_FILE")
# restic 0.14's `check` and `prune` lock the repository exclusively, and a `backup` meanwhile exits
# 1 with "unable to create lock in backend: repository is already locked exclusively by PID ..."
# (seen with Debian's restic 0.14.0: `check --read-data` in the background, `backup` beside it).
# restic 0.16 added --retry-lock; for 0.14 we wait and retry, bounded, so the scheduler's nightly
# check and a deploy's push at the same moment do not fail the deploy.
LOCKED = "repository is already locked"
LOCK_WAIT_SECONDS = 600


def redacted(repository: str) -> str:
    """The repository without any user:password@ part, fit for outputs and logs."""
    return re.sub(r"(://)[^/@]*@", r"\1***@", repository)


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: str
    paths: tuple[str, ...]
    tags: tuple[str, ...]

    @property
    def kind(self) -> str:
        return next((t.removeprefix("kind=") for t in self.tags if t.startswith("kind=")), "")


class Repository:
    """The stack's view of one restic repository, configured from the environment."""

    def __init__(self, location: str, stack: str, cache_dir: Path) -> None:
        self.location = location
        self.stack = stack
        self.cache_dir = cache_dir

    @classmethod
    def from_env(cls, stack: str, backup_dir: Path) -> Repository | None:
        """None when RESTIC_REPOSITORY is unset: local dumps only, as before."""
        location = os.environ.get("RESTIC_REPOSITORY", "")
        if not location:
            return None
        if not os.environ.get("RESTIC_PASSWORD"):
            raise HookError("RESTIC_REPOSITORY is set but RESTIC_PASSWORD (backupRepositoryPassword) is not")
        if shutil.which(RESTIC) is None:
            raise HookError(f"restic is not installed where this hook runs (PATH={os.environ.get('PATH', '')})")
        return cls(location, stack, backup_dir / CACHE_FOLDER)

    @property
    def tag(self) -> str:
        return f"stack={self.stack}"

    def run(
        self, *args: str, cwd: Path | None = None, stdout: object = subprocess.PIPE, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[bytes]:
        """restic with the repository and password from our environment; raises on failure."""
        # The backup folder may not exist yet (preflight runs first); it holds dumps, so 0700.
        self.cache_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cache_dir.mkdir(exist_ok=True, mode=0o700)
        argv = [RESTIC, "--cache-dir", str(self.cache_dir), *args]
        # An operator's shell may export restic's other password and repository sources (restic
        # docs, 075_scripting: RESTIC_PASSWORD_FILE, RESTIC_PASSWORD_COMMAND, RESTIC_REPOSITORY_FILE);
        # the stack's repository and password must be the ones used.
        environment = {k: v for k, v in os.environ.items() if k not in SHADOWING_ENV}
        give_up = time.monotonic() + env_int("BACKUP_LOCK_WAIT_SECONDS", LOCK_WAIT_SECONDS)
        pause = 2.0
        while True:
            if hasattr(stdout, "seek"):
                # A retried `dump` must not append to what the failed attempt wrote.
                stdout.seek(0)  # type: ignore[attr-defined]
                stdout.truncate()  # type: ignore[attr-defined]
            try:
                result = subprocess.run(
                    argv,
                    cwd=cwd,
                    env=environment,
                    stdout=stdout,  # type: ignore[arg-type]
                    stderr=subprocess.PIPE,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise HookError(
                    f"restic {args[0]} on {redacted(self.location)} timed out after {timeout:.0f}s"
                ) from None
            if result.returncode == 0 or LOCKED not in result.stderr.decode(errors="replace"):
                break
            if time.monotonic() + pause > give_up:
                break
            sys.stderr.write(
                f"restic {args[0]}: the repository is locked by another restic; retrying in {pause:.0f}s\n"
            )
            time.sleep(pause)
            pause = min(pause * 2, 30.0)
        if result.returncode != 0:
            detail = scrub(result.stderr.decode(errors="replace")).strip().splitlines()[-3:]
            raise HookError(
                f"restic {args[0]} on {redacted(self.location)} failed (exit {result.returncode}): {' '.join(detail)}"
            )
        return result

    def ensure_initialised(self) -> bool:
        """True when this call created the repository (restic init), False when it existed."""
        try:
            # `cat config` needs the repository and the password, and changes nothing (restic docs,
            # 075_scripting "Check if a repository is already initialized"). restic before 0.17
            # exits 1 for a missing repository and for any other error alike, so init decides.
            self.run("cat", "config", timeout=300)
            return False
        except HookError as missing:
            try:
                self.run("init", timeout=300)
            except HookError as failed:
                # Not "absent": unreachable, wrong password, no permission. Report both answers.
                raise HookError(f"{missing}; and it cannot be initialised: {failed}") from None
            return True

    def push(self, result: BackupResult, kind: str) -> str:
        """Backs up the dump, its checksum and its manifest as one snapshot; returns its id."""
        directory = result.file.parent
        out = self.run(
            "backup",
            "--json",
            "--host",
            self.stack,
            "--tag",
            f"{self.tag},kind={kind}",
            *(p.name for p in result.files),
            cwd=directory,
        )
        for line in reversed(out.stdout.decode(errors="replace").splitlines()):
            try:
                message = json.loads(line)
            except ValueError:
                continue
            # The summary names the snapshot: short in restic 0.14 (Debian bookworm), full since
            # restic PR #3993 (0.15); the 8-character prefix is what `snapshots --json` calls short_id.
            if message.get("message_type") == "summary" and message.get("snapshot_id"):
                return str(message["snapshot_id"])[:8]
        raise HookError("restic backup finished without naming its snapshot")

    def forget(self, keep: int) -> None:
        """restic's policy over this stack's snapshots only (restic docs, 060_forget)."""
        policy = ["--keep-last", str(keep)]
        for flag, name in (("--keep-daily", "BACKUP_KEEP_DAILY"), ("--keep-weekly", "BACKUP_KEEP_WEEKLY")):
            value = env_int(name, 0)
            if value > 0:
                policy += [flag, str(value)]
        # `--group-by ''` (restic forget --help: "disable grouping with ''") puts all of the stack's
        # snapshots in one group: the default (host,paths)
        # would make each dump, whose file name is new, a group of its own and never forget one.
        self.run("forget", "--prune", "--tag", self.tag, "--group-by", "", *policy)

    def check(self, read_subset: str | None = None) -> None:
        """Structure and index check; with read_subset, also reads and verifies that share of data."""
        self.run("check", *(["--read-data-subset", read_subset] if read_subset else []))

    def snapshots(self) -> list[Snapshot]:
        """This stack's snapshots, oldest first."""
        out = self.run("snapshots", "--json", "--tag", self.tag, timeout=600)
        found = [
            Snapshot(s["short_id"], s["time"], tuple(s.get("paths") or ()), tuple(s.get("tags") or ()))
            for s in json.loads(out.stdout or b"[]")
        ]
        return sorted(found, key=lambda s: s.time)

    def resolve(self, wanted: str, exclude: tuple[str, ...] = ()) -> Snapshot:
        """`latest` (this stack's newest, not one in `exclude`) or an id (any stack: a deliberate choice)."""
        if wanted == "latest":
            skip = [x for x in exclude if x]
            mine = [s for s in self.snapshots() if not any(s.id.startswith(x) or x.startswith(s.id) for x in skip)]
            if not mine:
                raise HookError(f"the repository holds no snapshot of stack {self.stack} to restore")
            return mine[-1]
        out = self.run("snapshots", "--json", wanted, timeout=600)
        listed = json.loads(out.stdout or b"[]")
        if not listed:
            raise HookError(f"the repository has no snapshot {wanted}")
        s = listed[0]
        return Snapshot(s["short_id"], s["time"], tuple(s.get("paths") or ()), tuple(s.get("tags") or ()))

    def fetch(self, snapshot: Snapshot, into: Path) -> Path:
        """Writes the snapshot's dump, checksum and manifest into `into`; returns the verified dump."""
        into.mkdir(parents=True, exist_ok=True, mode=0o700)
        dump: Path | None = None
        for path in snapshot.paths:
            target = into / Path(path).name
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                # restic dump: "If a single file is selected, it prints its contents to stdout".
                # push() names the files relative to the dump folder, which restic stores at the
                # snapshot's root (`restic ls` shows /<name>) while `paths` lists them absolute.
                self.run("dump", snapshot.id, f"/{target.name}", stdout=handle)
            if target.name.endswith(".dump"):
                dump = target
        if dump is None:
            raise HookError(f"snapshot {snapshot.id} holds no .dump file ({', '.join(snapshot.paths)})")
        check_sidecar(dump)
        return dump

    def publish(self, result: BackupResult, kind: str, keep: int) -> dict[str, object]:
        """Push, retention and check after a verified local dump; the hook's summary fields."""
        snapshot = self.push(result, kind)
        self.forget(keep)
        # The scheduler reads a share of the data back each time; the pre-update hook, which
        # delays an update, checks structure and indexes only.
        subset = os.environ.get("BACKUP_CHECK_READ_DATA") or None
        self.check(subset)
        return {
            "snapshot": snapshot,
            "repository": redacted(self.location),
            "kind": kind,
            "remoteSnapshots": len(self.snapshots()),
            "checked": f"read {subset} of the data" if subset else "structure",
        }


def check_sidecar(dump: Path) -> str:
    """The dump matches the .sha256 written with it (and the manifest's copy of that sum)."""
    sidecar = dump.with_name(dump.name + ".sha256")
    try:
        expected = sidecar.read_text().split()[0].lower()
    except (OSError, IndexError):
        raise HookError(f"{sidecar.name} is missing from the snapshot") from None
    with dump.open("rb") as handle:
        actual = hashlib.file_digest(handle, "sha256").hexdigest()
    if actual != expected:
        raise HookError(f"{dump.name} from the repository does not match its sha256 ({actual} != {expected})")
    manifest = dump.with_name(dump.name + ".manifest.json")
    if manifest.exists() and json.loads(manifest.read_text()).get("sha256") != actual:
        raise HookError(f"{manifest.name} describes another dump than {dump.name}")
    return actual
