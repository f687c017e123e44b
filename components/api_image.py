"""The API image: built from a Catalogizer checkout once per version, or a prebuilt reference.

A built image is tagged with its version, derived from what is built: the commit of a clean
git checkout, else a hash of the build context, each with a hash of the build recipe
(Dockerfile path, arguments, platform). `scripts/api_image.py` builds a version only when the
Docker host does not have it yet and keeps the newest `api.keepImages`, so checking out an
older commit (or setting `api.image` to a kept tag) switches back without a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.hook_support import docker_env, exported_summary, hook_command
from settings import Settings

SUMMARY_KEYS = ("image", "tag", "built", "seconds", "versions", "removed")


def _git(source: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def clean_commit(source: Path) -> str | None:
    """HEAD of `source` when it is the top of a git checkout without changes (submodules included)."""
    top = _git(source, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != source.resolve():
        return None
    if _git(source, "status", "--porcelain") != "":
        return None
    return _git(source, "rev-parse", "HEAD")


def context_digest(source: Path) -> str:
    """Every file under the context but git's own data, by path and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and ".git" not in p.relative_to(source).parts):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def image_version(source: Path, dockerfile: str, args: dict[str, str], platform: str) -> str:
    recipe = json.dumps({"dockerfile": dockerfile, "args": args, "platform": platform}, sort_keys=True)
    recipe_hash = hashlib.sha256(recipe.encode()).hexdigest()[:6]
    commit = clean_commit(source)
    if commit is not None:
        return f"git-{commit[:12]}-{recipe_hash}"
    return f"ctx-{context_digest(source)[:12]}-{recipe_hash}"


@dataclass(frozen=True)
class ApiImageArgs:
    settings: Settings


class ApiImage(pulumi.ComponentResource):
    """``ref`` is the image ID, so a new version replaces the containers."""

    ref: pulumi.Output[str]
    # The version tag: what a registry copy of this image is tagged with (swarm mode).
    version: str
    # Kept versions, newest first, the deployed one marked (built images only).
    versions: pulumi.Output[list[dict[str, object]]]

    def __init__(self, name: str, args: ApiImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:app:ApiImage", name, None, opts)
        settings = args.settings
        api = settings.api
        if api.source is not None:
            build_args = {"GO_VERSION": api.go_version}
            self.version = image_version(api.source, api.dockerfile, build_args, api.platform)
            build = hook_command(
                f"{name}-build",
                "api_image.py",
                environment={
                    "IMAGE_REPOSITORY": f"{settings.name_prefix}-api",
                    "IMAGE_TAG": self.version,
                    # The Dockerfile copies submodules/ from the checkout root, so the root is the context.
                    "BUILD_CONTEXT": str(api.source),
                    "DOCKERFILE": str(api.source / api.dockerfile),
                    "BUILD_ARGS": json.dumps(build_args, sort_keys=True),
                    "PLATFORM": api.platform,
                    "KEEP_IMAGES": str(api.keep_images),
                    **docker_env(settings),
                },
                # The version is in the environment: a new one runs the script again.
                triggers=[],
                parent=self,
            )
            summary = exported_summary(build.stdout, SUMMARY_KEYS)
            self.ref = summary.apply(lambda s: str(s.get("image", "")))
            self.versions = summary.apply(lambda s: list(s.get("versions", [])))
        else:
            assert api.image is not None
            self.version = "prebuilt-" + hashlib.sha256(api.image.encode()).hexdigest()[:12]
            remote = docker.RemoteImage(
                f"{name}-prebuilt", name=api.image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
            )
            self.ref = remote.image_id
            self.versions = pulumi.Output.from_input([{"tag": api.image, "serving": True}])
        self.register_outputs({"ref": self.ref, "versions": self.versions})
