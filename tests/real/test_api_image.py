"""scripts/api_image.py on a real engine: one build per version, reuse, retention."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_harness import DockerScope
from images import tags
from services import SCRIPTS, run_hook

API_IMAGE = SCRIPTS / "api_image.py"


@pytest.fixture
def repository(docker_scope: DockerScope) -> Iterator[str]:
    name = docker_scope.name("api")
    try:
        yield name
    finally:
        listed = subprocess.run(
            ["docker", "image", "ls", "--filter", f"reference={name}:*", "--format", "{{.Repository}}:{{.Tag}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        for reference in listed.stdout.split():
            subprocess.run(["docker", "image", "rm", "--force", reference], capture_output=True, check=False)


def deploy(repository: str, context: Path, tag: str, keep: int = 2) -> dict:
    # Each version's context differs, as each commit's would.
    (context / "Dockerfile").write_text(f"FROM {tags.BASE}\nARG GO_VERSION\nRUN echo {tag} > /version\n")
    result = run_hook(
        API_IMAGE,
        {
            "IMAGE_REPOSITORY": repository,
            "IMAGE_TAG": tag,
            "BUILD_CONTEXT": str(context),
            "DOCKERFILE": str(context / "Dockerfile"),
            "BUILD_ARGS": json.dumps({"GO_VERSION": "1.25"}),
            "PLATFORM": "linux/amd64",
            "KEEP_IMAGES": str(keep),
        },
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_each_version_is_built_once_and_kept_versions_switch_without_a_build(repository: str, tmp_path: Path) -> None:
    first = deploy(repository, tmp_path, "v1")
    assert first["built"] is True and first["image"].startswith("sha256:")
    again = deploy(repository, tmp_path, "v1")
    assert again["built"] is False and again["image"] == first["image"]

    time.sleep(1.1)  # distinct creation times: "newest" is by build time
    deploy(repository, tmp_path, "v2")
    time.sleep(1.1)
    third = deploy(repository, tmp_path, "v3")
    assert third["removed"] == ["v1"]
    assert third["versions"] == [{"tag": "v3", "serving": True}, {"tag": "v2", "serving": False}]

    started = time.monotonic()
    back = deploy(repository, tmp_path, "v2")
    assert back["built"] is False and back["removed"] == []
    assert back["versions"] == [{"tag": "v3", "serving": False}, {"tag": "v2", "serving": True}]
    print(f"[api-image] rollback to a kept version: {time.monotonic() - started:.1f}s, built=no")


def test_a_failed_build_names_the_step_and_tags_nothing(repository: str, tmp_path: Path) -> None:
    # A marker only this run's failing step carries, to find the container a build could leave behind.
    marker = f"exit 3 # {tmp_path.name}"
    (tmp_path / "Dockerfile").write_text(f"FROM {tags.BASE}\nRUN {marker}\n")
    result = run_hook(
        API_IMAGE,
        {
            "IMAGE_REPOSITORY": repository,
            "IMAGE_TAG": "broken",
            "BUILD_CONTEXT": str(tmp_path),
            "DOCKERFILE": str(tmp_path / "Dockerfile"),
            "PLATFORM": "linux/amd64",
            "KEEP_IMAGES": "3",
        },
    )
    assert result.returncode == 1 and result.stdout == ""
    assert f"API image failed: docker build of {repository}:broken failed" in result.stderr
    inspect = subprocess.run(["docker", "image", "inspect", f"{repository}:broken"], capture_output=True, check=False)
    assert inspect.returncode != 0
    left = subprocess.run(["docker", "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"], capture_output=True)
    leftovers = [line.split()[0] for line in left.stdout.decode().splitlines() if marker in line]
    subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True, check=False) if leftovers else None
    assert leftovers == [], "the failed step's container must not stay on the host"
