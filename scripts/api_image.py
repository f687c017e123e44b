#!/usr/bin/env python3
"""The API image: built once per version, kept for rollbacks, old versions pruned.

Run by `pulumi up` when the version to deploy changes. The version (IMAGE_TAG) is derived
by the program from what would be built: the Catalogizer commit of a clean git checkout,
else a hash of the build context, plus a hash of the Dockerfile path, build arguments and
platform. So going back to a version built before finds its image and builds nothing.

    IMAGE_REPOSITORY=catalogizer-api IMAGE_TAG=git-0123456789ab-5e1f00 BUILD_CONTEXT=../catalogizer \
    DOCKERFILE=../catalogizer/catalog-api/Dockerfile BUILD_ARGS='{"GO_VERSION": "1.25"}' \
    PLATFORM=linux/amd64 KEEP_IMAGES=3 python3 scripts/api_image.py

Steps: reuse `IMAGE_REPOSITORY:IMAGE_TAG` if the Docker host has it, else build it with
BuildKit for PLATFORM; then remove all but the KEEP_IMAGES newest versions of the repository
(never the one being deployed; an image still used by a running container is left for the
next run). stdout is one JSON object: image ID, tag, whether it was built, the kept versions
(newest first) and what was removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hooklib import HookError, docker, emit, env, env_int, fail, scrub

VERSION_LABEL = "catalogizer.version"
BUILD_TIMEOUT = 3600


def image_id(reference: str) -> str | None:
    result = docker(["image", "inspect", "--format", "{{.Id}}", "--", reference], timeout=60)
    return result.stdout.decode().strip() if result.returncode == 0 else None


def build(reference: str, tag: str, context: str, dockerfile: str, args: dict[str, str], platform: str) -> None:
    # --force-rm: the classic builder otherwise leaves the failed step's container on the host; BuildKit
    # keeps none, and buildx accepts the flag as a hidden no-op (docker/buildx commands/build.go).
    argv = ["build", "--force-rm", "--platform", platform, "--file", dockerfile, "--tag", reference]
    argv += ["--label", f"{VERSION_LABEL}={tag}"]
    for key, value in sorted(args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    # The CLI's own default builder: BuildKit (buildx) on every current Docker, the classic
    # builder where the buildx plugin is missing. Both honour .dockerignore and --platform.
    started = subprocess.run(["docker", *argv, "--", context], capture_output=True, timeout=BUILD_TIMEOUT, check=False)
    if started.returncode != 0:
        tail = "\n".join(scrub(started.stderr.decode(errors="replace")).strip().splitlines()[-25:])
        raise HookError(f"docker build of {reference} failed (exit {started.returncode}):\n{tail}")


def versions(repository: str) -> list[dict[str, str]]:
    """Every tag of the repository on the host, newest first."""
    listed = docker(
        ["image", "ls", "--filter", f"reference={repository}:*", "--format", "{{json .}}"], timeout=60
    )
    if listed.returncode != 0:
        raise HookError(f"cannot list images of {repository}: {scrub(listed.stderr.decode()).strip()}")
    found = []
    for line in listed.stdout.decode().splitlines():
        row = json.loads(line)
        if row.get("Tag") and row["Tag"] != "<none>":
            found.append({"tag": row["Tag"], "id": row["ID"], "created": row["CreatedAt"]})
    # "2026-11-29 05:40:01 +0000 UTC": sortable as text within one host's time zone.
    return sorted(found, key=lambda row: row["created"], reverse=True)


def prune(repository: str, keep: int, deploying: str) -> tuple[list[dict[str, str]], list[str]]:
    """Keeps the version being deployed and the keep-1 newest others; returns (kept, removed)."""
    rows = versions(repository)
    doomed = [row for row in rows if row["tag"] != deploying][keep - 1 :]
    removed = []
    for row in doomed:
        result = docker(["image", "rm", "--", f"{repository}:{row['tag']}"], timeout=120)
        if result.returncode == 0:
            removed.append(row["tag"])
    # An image a running container still uses cannot go yet; it stays listed until a later run.
    return [row for row in rows if row["tag"] not in removed], removed


def main() -> None:
    started = time.monotonic()
    try:
        repository, tag = env("IMAGE_REPOSITORY"), env("IMAGE_TAG")
        reference = f"{repository}:{tag}"
        existing = image_id(reference)
        if existing is None:
            build(
                reference,
                tag,
                env("BUILD_CONTEXT"),
                env("DOCKERFILE"),
                json.loads(os.environ.get("BUILD_ARGS") or "{}"),
                env("PLATFORM"),
            )
            existing = image_id(reference)
            if existing is None:
                raise HookError(f"docker build reported success but {reference} is not on the host")
            built = True
        else:
            built = False
        kept, removed = prune(repository, env_int("KEEP_IMAGES", 3), tag)
    except HookError as exc:
        fail(f"API image failed: {exc}")
    except subprocess.TimeoutExpired as exc:
        fail(f"API image failed: {' '.join(str(a) for a in exc.cmd[:3])} timed out after {exc.timeout:.0f}s")
    emit(
        {
            "image": existing,
            "tag": tag,
            "built": built,
            "seconds": round(time.monotonic() - started, 3),
            "versions": [{"tag": row["tag"], "serving": row["tag"] == tag} for row in kept],
            "removed": removed,
        }
    )


if __name__ == "__main__":
    main()
