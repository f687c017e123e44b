"""pulumi-docker's native `docker.Image` (the v4-style build resource, in pulumi-docker 5.x).

Sources: pulumi/pulumi-docker v5.1.0 `provider/provider.go` (Check, Diff, hashContext,
getIgnorePatterns) and `provider/image.go` (marshalBuildAndApplyDefaults, marshalBuilder, the
build and the skipPush outputs). The .dockerignore matching follows moby/patternmatcher
(`Matches`/`MatchesOrParentMatches`), which the provider's context walk (tonistiigi/fsutil) uses.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine_base import Change, Diff, Inputs, Provider, Refused, RehearsalError, Spec, changed_keys, changed_paths

# A Docker CLI that builds with BuildKit (DOCKER_BUILDKIT=1): Debian's docker.io 20.10 CLI does;
# newer CLIs need the buildx plugin for that. The provider talks BuildKit through the API itself.
_DOCKER_CLIS = ("/usr/bin/docker", "docker")
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


# --- .dockerignore ------------------------------------------------------------------------------


def read_ignore_file(text: str) -> list[str]:
    """moby/patternmatcher/ignorefile ReadAll: comments and blanks dropped, paths cleaned, no leading /."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        body = line[1:].strip() if exclusion else line
        body = os.path.normpath(body) if body else body
        if len(body) > 1 and body.startswith("/"):
            body = body[1:]
        patterns.append(("!" if exclusion else "") + body)
    return patterns


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher Pattern.compile: `**` spans directories, `*` and `?` stay within one."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 1
                if pattern.startswith("/", i + 1):
                    out += "(.*/)?"
                    i += 1
                else:
                    out += ".*"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


class IgnoreRules:
    def __init__(self, patterns: list[str]) -> None:
        self.rules = [(p.startswith("!"), _pattern_regex(p.lstrip("!"))) for p in patterns if p.lstrip("!")]

    def excluded(self, relative: str) -> bool:
        """MatchesOrParentMatches: the last rule matching the path or one of its parents decides."""
        parts = relative.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        matched = False
        for exclusion, regex in self.rules:
            if exclusion != matched:
                continue
            if any(regex.match(c) for c in candidates):
                matched = not exclusion
        return matched


def ignore_rules(dockerfile: Path, context: Path) -> IgnoreRules:
    """provider.go getIgnorePatterns: `<Dockerfile>.dockerignore` first, else `<context>/.dockerignore`."""
    for candidate in (Path(str(dockerfile) + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            return IgnoreRules(read_ignore_file(candidate.read_text()))
    return IgnoreRules([])


def context_digest(context: Path, dockerfile: Path) -> str:
    """provider.go hashContext: the Dockerfile, then every file the ignore rules keep (name, mode, content)."""
    rules = ignore_rules(dockerfile, context)
    accumulator = hashlib.sha256()

    def add(path: Path, name: str) -> None:
        mode = path.lstat().st_mode
        content = hashlib.sha256()
        if stat.S_ISLNK(mode):
            content.update(os.path.realpath(path).encode())  # a symlink counts by its target path
        else:
            content.update(path.read_bytes())
        accumulator.update(name.encode() + stat.filemode(mode).encode() + content.digest() + b"\0")

    add(dockerfile, "Dockerfile")
    for root, dirs, files in os.walk(context):
        dirs.sort()
        for name in sorted(files):
            path = Path(root, name)
            relative = path.relative_to(context).as_posix()
            if not rules.excluded(relative):
                add(path, relative)
    return accumulator.hexdigest()


def _docker_cli() -> str:
    for candidate in _DOCKER_CLIS:
        if os.path.sep not in candidate or Path(candidate).exists():
            return candidate
    raise RehearsalError("no docker CLI found for BuildKit builds")


class ImageProvider(Provider):
    """`docker.Image` with `skipPush`: a local BuildKit build; delete leaves the image."""

    token = "docker:index/image:Image"
    spec = Spec(
        {"imageName", "build", "skipPush", "buildOnPreview"},
        {"build": Spec({"context", "dockerfile", "args", "platform", "builderVersion", "contextDigest"})},
    )

    def check(self, where: str, inputs: Inputs) -> Inputs:
        super().check(where, inputs)
        if inputs.get("skipPush") is not True:
            raise Refused(f"{where}: input 'skipPush' must be true (no registry: the rehearsal never pushes)")
        build = dict(inputs.get("build") or {})
        if build.get("builderVersion") not in (None, "BuilderBuildKit"):
            raise Refused(f"{where}: input 'build.builderVersion' other than BuilderBuildKit is not implemented")
        # image.go marshalBuildAndApplyDefaults: context ".", dockerfile <context>/Dockerfile; an explicit
        # relative dockerfile is relative to the program's directory (Check stats it as given).
        context = build.get("context") or "."
        dockerfile = build.get("dockerfile") or os.path.join(context, "Dockerfile")
        if not Path(dockerfile).is_file():
            raise RehearsalError(f"could not open dockerfile at relative path {dockerfile!r}")
        build.update(context=context, dockerfile=dockerfile)
        # provider.go Check: the context digest becomes the implicit input build.contextDigest, so a
        # changed context shows as a diff; platform defaults to linux/<arch of the Pulumi machine>.
        build["contextDigest"] = context_digest(Path(context).resolve(), Path(dockerfile).resolve())
        if not build.get("platform"):
            build["platform"] = "linux/" + _GOARCH.get(platform.machine(), platform.machine())
        return {**inputs, "build": build, "buildOnPreview": bool(inputs.get("buildOnPreview"))}

    def diff(self, old: Mapping[str, Any], inputs: Inputs) -> Diff:
        # provider.go Diff: any input difference is DIFF_SOME with no replace keys: an update (rebuild).
        return Diff(changed_keys(old["inputs"], inputs), changed_paths(old["inputs"], inputs), set(), False)

    def create(self, name: str, inputs: Inputs) -> Change:
        build = inputs["build"]
        tag = inputs["imageName"]
        with tempfile.TemporaryDirectory(prefix="rehearsal-build-") as scratch:
            iidfile = Path(scratch) / "iid"
            argv = [_docker_cli(), "build", "--platform", build["platform"], "-f", build["dockerfile"], "-t", tag]
            argv += ["--iidfile", str(iidfile)]
            for key, value in sorted((build.get("args") or {}).items()):
                argv += ["--build-arg", f"{key}={value}"]
            argv.append(build["context"])
            # image.go: builder version "2" (BuildKit) is the default.
            env = {**os.environ, "DOCKER_BUILDKIT": "1"}
            result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
                raise RehearsalError(f"docker build of {tag} failed (exit {result.returncode}):\n{tail}")
            image_id = iidfile.read_text().strip()
        self.r.built_images.update({tag, image_id})
        self.r.log(f"built {tag} ({build['platform']}, BuildKit): {image_id[:19]}")
        # image.go: with skipPush, repoDigest is the local image ID.
        return Change(tag, {**inputs, "baseImageName": tag, "repoDigest": image_id, "platform": build["platform"]})

    def update(self, name: str, old: Mapping[str, Any], inputs: Inputs, diff: Diff) -> Change:
        # provider.go Update: builds again (same code path as Create).
        return self.create(name, inputs)

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass  # provider.go Delete: the built image stays in the local image store.
