"""Which provider plugin carries out a resource: the default provider of each resource type, and
explicit `pulumi:providers:docker` resources with a `host`, through whose Docker engine their
resources are created, updated and deleted (pulumi/pulumi pkg/resource/deploy/providers/). README.md
beside this file has the row.

`ProviderResolution` is one part of `Rehearsal` (rehearsal_engine.py), which sets the attributes it
works on in its `__init__`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import docker
from engine_base import Inputs, Provider, Refused
from providers_command import CommandProvider
from providers_docker import ContainerProvider, NetworkProvider, RemoteImageProvider, VolumeProvider
from providers_docker_image import ImageProvider
from providers_misc import PrivateKeyProvider, RandomPasswordProvider, SelfSignedCertProvider
from providers_registry import RegistryImageProvider, TagProvider
from providers_swarm import SecretProvider, ServiceConfigProvider, ServiceProvider

PROVIDERS: tuple[type[Provider], ...] = (
    NetworkProvider,
    VolumeProvider,
    RemoteImageProvider,
    ImageProvider,
    RandomPasswordProvider,
    PrivateKeyProvider,
    SelfSignedCertProvider,
    CommandProvider,
    ContainerProvider,
    SecretProvider,
    ServiceConfigProvider,
    ServiceProvider,
    TagProvider,
    RegistryImageProvider,
)


def _docker_client() -> docker.DockerClient:
    # The provider's `docker:host` defaults to DOCKER_HOST, then the local socket.
    return docker.from_env(timeout=300)


class ProviderResolution:
    """The Docker client of each step (its explicit provider's `host`, else the default provider's)
    and the explicit provider resources in the state."""

    # Set by Rehearsal.__init__.
    _default_docker: docker.DockerClient
    _clients: dict[str, docker.DockerClient]
    _local: threading.local
    _lock: threading.RLock
    current: dict[str, dict[str, Any]]

    if TYPE_CHECKING:
        # engine_snapshot.Snapshot, the other part of Rehearsal.
        def _next_seq(self) -> int: ...

        def _save(self) -> None: ...

    # -- explicit providers -----------------------------------------------------------------------
    @property
    def docker(self) -> docker.DockerClient:
        """The Docker client of the step running on this thread: its explicit provider's `host`, else
        the default provider's (DOCKER_HOST)."""
        return getattr(self._local, "client", None) or self._default_docker

    @contextlib.contextmanager
    def _provider_client(self, host: str | None) -> Iterator[None]:
        if not host:
            yield
            return
        with self._lock:
            if host not in self._clients:
                self._clients[host] = docker.DockerClient(base_url=host, timeout=300)
        self._local.client = self._clients[host]
        try:
            yield
        finally:
            self._local.client = None

    def _explicit_provider(self, where: str, request: Any, urn: str, inputs: Inputs) -> tuple[str, Inputs]:
        """A `pulumi:providers:docker` resource: a provider plugin with that config, which resources
        name by reference (pkg/resource/deploy/providers/reference.go ParseReference: `<urn>::<id>`,
        split at the last `::`). Only `host` is implemented; a changed config would replace the
        provider and its resources, which is not modelled, so it is refused."""
        if request.type != "pulumi:providers:docker":
            raise Refused(f"{where}: provider type {request.type} is not implemented by the rehearsal engine")
        for key in inputs:
            if key not in ("host", "version"):
                raise Refused(f"{where}: provider input '{key}' is not implemented by the rehearsal engine")
        with self._lock:
            old = self.current.get(urn)
            if old is not None and old["inputs"].get("host") != inputs.get("host"):
                raise Refused(f"{where}: a changed provider host (a provider replacement) is not implemented")
            provider_id = old["id"] if old is not None else f"provider-{self._next_seq()}"
            self.current[urn] = {
                "urn": urn,
                "type": request.type,
                "name": request.name,
                "parent": request.parent,
                "custom": True,
                "provider_resource": True,
                "dependencies": list(request.dependencies),
                "protect": False,
                "retain_on_delete": False,
                "delete_before_replace": None,
                "replace_on_changes": [],
                "id": provider_id,
                "inputs": inputs,
                "outputs": inputs,
                "seq": self._next_seq(),
            }
            self._save()
        return provider_id, inputs

    def _provider_host(self, where: str, reference: str) -> str | None:
        if not reference:
            return None
        urn = reference.rsplit("::", 1)[0]  # ParseReference: the last "::"
        with self._lock:
            entry = self.current.get(urn)
        if entry is None or not entry.get("provider_resource"):
            raise Refused(f"{where}: resource option 'provider' names {reference}, which is not a docker provider here")
        return entry["inputs"].get("host")
