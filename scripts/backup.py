#!/usr/bin/env python3
"""Pre-update backup: a verified pg_dump of the Catalogizer database.

Run by `pulumi up` before any API container is replaced; an operator can run it by hand:

    PG_CONTAINER=catalogizer-prod-postgres PGUSER=catalogizer PGDATABASE=catalogizer \
    PGPASSWORD=... BACKUP_DIR=backups BACKUP_KEEP=10 STACK_NAME=prod python3 scripts/backup.py

The dump is streamed to a hidden temporary file and renamed only after it is complete,
synced and readable by pg_restore, so a file with the final name is always a whole dump.
stdout is one JSON object: file, bytes, sha256, seconds.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hooklib import HookError, emit, env, env_int, fail, require_running, scrub, use_service_container
from manifest import ExportedSnapshot, dumps

CHUNK = 1024 * 1024
DUMP_SUFFIX = ".dump"
CHECKSUM_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Database:
    """Reached through `docker exec` into its container, or directly (PGHOST) from a sidecar."""

    container: str | None
    user: str
    name: str

    @classmethod
    def from_env(cls) -> Database:
        container = os.environ.get("PG_CONTAINER") or None
        if container is None and not os.environ.get("PGHOST"):
            raise HookError("set PG_CONTAINER (docker exec) or PGHOST (direct connection)")
        return cls(container=container, user=env("PGUSER"), name=env("PGDATABASE"))

    def argv(self, *command: str, stdin: bool = False) -> list[str]:
        if self.container is None:
            return list(command)  # libpq reads PGHOST and PGPASSWORD from the environment
        # `-e PGPASSWORD` copies the value from our environment; it never appears on argv.
        # `--` ends the options (spf13/pflag, which the docker CLI parses with): a container name
        # can never be read as one.
        return ["docker", "exec", *(["-i"] if stdin else []), "-e", "PGPASSWORD", "--", self.container, *command]

    def describe(self) -> str:
        return f"{self.name} in {self.container}" if self.container else f"{self.name} at {os.environ['PGHOST']}"


@dataclass(frozen=True)
class BackupResult:
    file: Path
    bytes: int
    sha256: str
    seconds: float
    # Row counts and checksums taken with the dump; only when it goes off-host.
    manifest: Path | None = None

    @property
    def files(self) -> list[Path]:
        """Everything that belongs to this dump: itself, its checksum, its manifest."""
        extra = [self.manifest] if self.manifest is not None else []
        return [self.file, self.file.with_name(self.file.name + CHECKSUM_SUFFIX), *extra]

    def summary(self) -> dict[str, object]:
        return {"file": str(self.file), "bytes": self.bytes, "sha256": self.sha256, "seconds": round(self.seconds, 3)}


def safe_stack_name(stack: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", stack):
        raise HookError(f"STACK_NAME {stack!r} may hold only letters, digits, '.', '_' and '-'")
    return stack


def dump_name(stack: str, now: datetime.datetime) -> str:
    # Milliseconds keep two backups in the same second apart; the name sorts by time.
    return f"{stack}_{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z{DUMP_SUFFIX}"


def dumps_of(directory: Path, stack: str) -> list[Path]:
    pattern = re.compile(rf"{re.escape(stack)}_\d{{8}}T\d{{9}}Z{re.escape(DUMP_SUFFIX)}")
    return sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(target: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, never a part (mode 0600)."""
    partial = target.with_name(f".{target.name}.partial")
    # A leftover (or planted) partial goes first; unlink(2) removes a symlink itself, never
    # its target. O_EXCL then refuses anything that reappears, symlink included (open(2):
    # "If O_CREAT and O_EXCL are set ... symbolic links are not followed"), and O_NOFOLLOW
    # makes that explicit.
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(target)


def force_private(directory: Path) -> None:
    """Dumps hold every password hash and the whole catalog: the folder is 0700 whatever it was.

    mkdir's mode applies only to a folder it creates (and is masked by the umask); an existing
    0777 folder would stay open to every local user, so its mode is set explicitly.
    """
    if directory.is_symlink():
        # chmod follows symlinks: a link planted in place of the folder would change its target.
        raise HookError(f"backup folder {directory} is a symbolic link; point backup.dir at the real folder")
    if directory.stat().st_mode & 0o777 != 0o700:
        directory.chmod(0o700)


def verify_dump(db: Database, path: Path) -> int:
    """Reads the dump's table of contents back with pg_restore; returns its entry count."""
    with path.open("rb") as handle:
        result = subprocess.run(
            db.argv("pg_restore", "--list", stdin=True), stdin=handle, capture_output=True, timeout=3600, check=False
        )
    if result.returncode != 0:
        raise HookError(f"pg_restore cannot read {path.name}: {scrub(result.stderr.decode(errors='replace')).strip()}")
    return sum(1 for line in result.stdout.decode(errors="replace").splitlines() if line and not line.startswith(";"))


def take_backup(db: Database, directory: Path, stack: str, manifest: bool = False) -> BackupResult:
    """A verified dump; with `manifest`, per-table counts and checksums from the dump's own snapshot."""
    started = time.monotonic()
    if db.container is not None:
        require_running(db.container, "PostgreSQL")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        force_private(directory)
    except OSError as exc:
        raise HookError(f"cannot create backup folder {directory}: {exc.strerror}") from None
    final = directory / dump_name(stack, datetime.datetime.now(datetime.UTC))
    partial = directory / f".{final.name}.partial"
    digest = hashlib.sha256()
    size = 0
    exported = ExportedSnapshot(db) if manifest else None
    snapshot = ["--snapshot", exported.snapshot] if exported else []
    tables = None
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            process = subprocess.Popen(
                db.argv("pg_dump", "--format=custom", *snapshot, "--username", db.user, "--dbname", db.name),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert process.stdout is not None and process.stderr is not None
            if exported:
                exported.start()
            try:
                # Hash while streaming, so verification costs no second read of a large dump.
                while chunk := process.stdout.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            finally:
                process.stdout.close()
                stderr = process.stderr.read().decode(errors="replace")
                code = process.wait()
        if code != 0:
            raise HookError(f"pg_dump of {db.describe()} failed (exit {code}): {scrub(stderr).strip()}")
        if exported:
            tables = exported.finish()
            exported = None
        if size == 0:
            raise HookError(f"pg_dump of {db.name} produced an empty file")
        verify_dump(db, partial)
        # The checksum goes first, so a dump under its final name always has one beside it.
        checksum = f"{digest.hexdigest()}  {final.name}\n".encode()
        write_atomically(final.with_name(final.name + CHECKSUM_SUFFIX), checksum)
        if tables is not None:
            record = {"dump": final.name, "sha256": digest.hexdigest(), "database": db.name, "tables": tables}
            write_atomically(final.with_name(final.name + MANIFEST_SUFFIX), dumps(record))
        partial.replace(final)
        _fsync_dir(directory)
    except OSError as exc:
        raise HookError(f"cannot write the dump to {directory}: {exc.strerror or exc}") from None
    finally:
        if exported:
            exported.abort()
        partial.unlink(missing_ok=True)
    return BackupResult(
        file=final.resolve(),
        bytes=size,
        sha256=digest.hexdigest(),
        seconds=time.monotonic() - started,
        manifest=final.resolve().with_name(final.name + MANIFEST_SUFFIX) if tables is not None else None,
    )


def apply_retention(directory: Path, stack: str, keep: int, spare: tuple[Path, ...] = ()) -> list[Path]:
    """Deletes all but the newest `keep` dumps of this stack (and their checksums), never one in `spare`."""
    removed = []
    spared = {p.resolve() for p in spare}
    for old in dumps_of(directory, stack)[:-keep]:
        if old.resolve() in spared:
            continue
        old.unlink()
        old.with_name(old.name + CHECKSUM_SUFFIX).unlink(missing_ok=True)
        old.with_name(old.name + MANIFEST_SUFFIX).unlink(missing_ok=True)
        removed.append(old)
    return removed


def main() -> None:
    try:
        stack = safe_stack_name(env("STACK_NAME"))
        keep = env_int("BACKUP_KEEP", 10)
        if keep < 1:
            raise HookError("BACKUP_KEEP must be at least 1")
        directory = Path(env("BACKUP_DIR"))
        from offsite import Repository  # offsite imports this module's names

        repository = Repository.from_env(stack, directory)
        use_service_container()
        result = take_backup(Database.from_env(), directory, stack, manifest=repository is not None)
        apply_retention(directory, stack, keep)
        summary = result.summary()
        if repository is not None:
            # Only a dump that passed every local check leaves the host; a failed push fails the hook,
            # so `pulumi up` stops before the API changes (the verified local dump stays).
            summary.update(repository.publish(result, env("BACKUP_KIND", "pre-update"), keep))
    except HookError as exc:
        fail(f"backup failed: {exc}")
    emit(summary)


if __name__ == "__main__":
    main()
