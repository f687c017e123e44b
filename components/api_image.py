"""The API image: built from a Catalogizer checkout, or a prebuilt reference."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from settings import Settings


@dataclass(frozen=True)
class ApiImageArgs:
    settings: Settings


class ApiImage(pulumi.ComponentResource):
    """``ref`` is the image ID, so a rebuild with new content replaces the containers."""

    ref: pulumi.Output[str]

    def __init__(self, name: str, args: ApiImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("catalogizer:app:ApiImage", name, None, opts)
        settings = args.settings
        api = settings.api
        child = pulumi.ResourceOptions(parent=self)
        if api.source is not None:
            image = docker.Image(
                f"{name}-build",
                image_name=f"{settings.name_prefix}-api:latest",
                build=docker.DockerBuildArgs(
                    # The Dockerfile copies submodules/ from the checkout root, so the root is the context.
                    context=str(api.source),
                    dockerfile=str(api.source / api.dockerfile),
                    args={"GO_VERSION": api.go_version},
                    platform=api.platform,
                ),
                skip_push=True,
                opts=child,
            )
            # For a local-only image this is the image ID (sha256:...), which changes with the content.
            self.ref = image.repo_digest
        else:
            assert api.image is not None
            remote = docker.RemoteImage(f"{name}-prebuilt", name=api.image, keep_locally=True, opts=child)
            self.ref = remote.image_id
        self.register_outputs({"ref": self.ref})
