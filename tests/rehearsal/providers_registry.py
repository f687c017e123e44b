"""pulumi-docker's Tag and RegistryImage: how the program pushes the API image to the cluster's
registry (TF resource_docker_tag*.go, resource_docker_registry_image*.go, authentication_helpers.go
of kreuzwerker/terraform-provider-docker v4.5.0). README.md beside this file has the rows."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from typing import Any

import docker.errors
from engine_base import Change, Inputs, Provider, RehearsalError, Spec


class TagProvider(Provider):
    # TF resource_docker_tag.go: source_image, target_image, tag_triggers all ForceNew (not auto-named);
    # resourceDockerTagCreate: ImageTag then ImageInspect of the source for source_image_id, id
    # "<source>.<target>"; resourceDockerTagDelete deletes nothing.
    token = "docker:index/tag:Tag"
    spec = Spec({"sourceImage", "targetImage", "tagTriggers"})

    def create(self, name: str, inputs: Inputs) -> Change:
        source, target = inputs["sourceImage"], inputs["targetImage"]
        repository, _, tag = target.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = target, "latest"
        try:
            self.r.docker.api.tag(source, repository, tag)
            image_id = self.r.docker.api.inspect_image(source)["Id"]
        except docker.errors.APIError as exc:
            raise RehearsalError(f"failed to create docker tag: {exc.explanation or exc}") from None
        return Change(f"{source}.{target}", {**inputs, "sourceImageId": image_id})

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass  # "We do not delete any of the source and target images"


class RegistryImageProvider(Provider):
    """TF resource_docker_registry_image*.go: `name` and `triggers` ForceNew, `keep_remotely` and
    `insecure_skip_verify` in place (Update only reads); create pushes the image the engine already has
    (no `build` here) with the resource's auth_config, then reads the digest back from the registry
    (getImageDigestWithFallback: HEAD <address>/v2/<repo>/manifests/<tag> with the schema-2 and OCI
    Accept types, the Docker-Content-Digest header; the address from canonicalizeRegistryAddress:
    https:// unless http:// is given)."""

    token = "docker:index/registryImage:RegistryImage"
    spec = Spec({"name", "keepRemotely", "triggers", "authConfig"}, {"authConfig": Spec({"address"})})
    updatable = frozenset({"keepRemotely", "insecureSkipVerify"})

    def check(self, where: str, inputs: Inputs) -> Inputs:
        super().check(where, inputs)
        if inputs.get("keepRemotely") is not True:
            raise RehearsalError(f"{where}: input 'keepRemotely' must be true (registry deletes are not modelled)")
        if not inputs.get("authConfig"):
            # resourceDockerRegistryImageCreate: without a resource auth_config the provider's
            # registry_auth must name the registry, else getAuthConfigForRegistry fails the create.
            raise RehearsalError(f"{where}: no auth config found for the registry (set auth_config)")
        return inputs

    def create(self, name: str, inputs: Inputs) -> Change:
        image = inputs["name"]
        repository, _, tag = image.rpartition(":")
        # pushDockerRegistryImage: ImagePush of the fully qualified name; no credentials without a username.
        for line in self.r.docker.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in line:
                raise RehearsalError(f"Error pushing docker image: {line['error']}")
        address = inputs["authConfig"]["address"]
        base = address if address.startswith(("http://", "https://")) else f"https://{address}"
        _, _, path = repository.partition("/")
        request = urllib.request.Request(f"{base}/v2/{path}/manifests/{tag}", method="HEAD")
        # setupHTTPHeadersForRegistryRequests adds four Accept values (Header.Add); urllib keeps one
        # value per header name, so they go as one comma-separated list, which HTTP reads the same.
        # With only the last of them the registry would describe another manifest (another digest).
        accept = ", ".join(
            (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.index.v1+json",
            )
        )
        request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                digest = answer.headers.get("Docker-Content-Digest")
        except OSError as exc:
            raise RehearsalError(
                f"Got error getting registry image digest: Error during registry request: {exc}"
            ) from None
        if not digest:
            raise RehearsalError("Got error getting registry image digest: no Docker-Content-Digest header")
        return Change(digest, {**inputs, "sha256Digest": digest})

    def delete(self, entry: Mapping[str, Any]) -> None:
        pass  # keep_remotely: resourceDockerRegistryImageDelete returns at once.
