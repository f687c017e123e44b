"""Make sure the local test images exist (building only what is missing)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().with_name("build.sh")


class ImageBuildError(RuntimeError):
    """build.sh failed; the message carries its full output."""


def ensure_images(force: bool = False, timeout: float = 1800.0) -> None:
    """Run build.sh, which skips images that are already built and current.

    The script's output is echoed to stderr so build timings show up in
    pytest's captured/session output.
    """
    cmd = ["bash", str(BUILD_SCRIPT)]
    if force:
        cmd.append("--force")
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise ImageBuildError(f"{BUILD_SCRIPT} timed out after {timeout:.0f}s\n{out}") from exc
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise ImageBuildError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}:\n{output}")
    sys.stderr.write(output)
    sys.stderr.write(f"[images] ensure_images took {time.monotonic() - started:.1f} s\n")
