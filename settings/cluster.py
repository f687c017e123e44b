"""catalogizer:cluster: one Docker host (today's stack) or an existing Docker Swarm.

Swarm mode reuses every other setting. What a Swarm service cannot do the way the single-host
stack does it is refused here, with the key, the reason and the fix, before anything is declared.
"""

from __future__ import annotations

import re

from settings.model import (
    CLUSTER_MODES,
    NODE_LABEL_DATA,
    SINGLE_HOST,
    BackupSettings,
    ClusterSettings,
    MonitoringSettings,
    PostgresSettings,
    RedisSettings,
    TlsSettings,
)
from settings.reader import ConfigError, Loader

# A registry as image references name it (distribution/reference: domain[:port], then an
# optional path); no scheme, since the engine decides http/https itself.
_REGISTRY_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])"
    r"(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*",
    flags=re.ASCII,
)
# The DOCKER_HOST forms the docker CLI takes for a remote engine, narrowed: a host name or IP that
# cannot start with `-` (it reaches ssh's argv), an optional ssh user, and never a password (the value
# is a plain provider input and an environment value of the hooks).
_HOST = r"(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:]+\])"
# No tcp://: the data node's provider and the hooks get no TLS material yet, and the Docker API in
# clear over TCP is root on that node for anyone on the path.
_DOCKER_HOST_RE = re.compile(
    rf"unix:///[A-Za-z0-9._/-]+|ssh://(?:[A-Za-z0-9._-]+@)?{_HOST}(?::[0-9]{{1,5}})?",
    flags=re.ASCII,
)


def load_cluster(loader: Loader) -> ClusterSettings:
    s = loader.section("cluster")
    mode = s.choice("mode", "single", CLUSTER_MODES)
    if mode == "single":
        for name in ("registry", "dataNodeHost", "encryptedOverlay"):
            if name in s.raw:
                raise ConfigError(
                    f"{s.full_key(name)}: only used with mode=swarm; remove it "
                    f"(`pulumi config rm --path '{s.full_key(name)}'`) or set '{s.key}.mode' to swarm."
                )
        return SINGLE_HOST
    registry = s.text("registry", None)
    if registry is None:
        raise ConfigError(
            f"{s.full_key('registry')}: required with mode=swarm: every node pulls the built API image from "
            f"it. Set it with `pulumi config set --path '{s.full_key('registry')}' registry.internal:5000`."
        )
    # A scheme is only ever `http://`, said on purpose for a plain-HTTP registry on a private network
    # (the nodes' engines must list it in insecure-registries); without one the registry is HTTPS.
    plain_http = registry.startswith("http://")
    address = registry.removeprefix("http://")
    if len(address) > 200 or not _REGISTRY_RE.fullmatch(address):
        raise ConfigError(
            f"{s.full_key('registry')}: {registry!r} is not a registry address; use host[:port][/path] for an "
            "HTTPS registry, e.g. registry.internal:5000 or 10.0.0.5:5000/catalogizer, or http://host:port for a "
            "plain-HTTP one on a private network."
        )
    data_host = s.text("dataNodeHost", None)
    if data_host is None:
        raise ConfigError(
            f"{s.full_key('dataNodeHost')}: required with mode=swarm: the hooks (backup, restore) reach "
            f"PostgreSQL on the node labelled {NODE_LABEL_DATA}=true through it. Set it with "
            f"`pulumi config set --path '{s.full_key('dataNodeHost')}' ssh://admin@data-1`."
        )
    if not _DOCKER_HOST_RE.fullmatch(data_host):
        # The value is not repeated: a mistyped one may hold a password (ssh://user:secret@host).
        raise ConfigError(
            f"{s.full_key('dataNodeHost')}: not a Docker host URL without credentials; use ssh://user@host "
            "(keys from the SSH agent) or unix:///path/to/docker.sock (as DOCKER_HOST takes it); tcp:// is not "
            "accepted (no TLS material is passed on yet)."
        )
    # Off only on purpose: Swarm encrypts with IPsec ESP (AES-GCM) in the kernel, and a kernel without
    # it passes no overlay traffic at all (docs/security.md, "Swarm mode").
    encrypted = s.boolean("encryptedOverlay", True)
    return ClusterSettings(
        mode=mode,
        registry=address,
        registry_plain_http=plain_http,
        data_node_host=data_host,
        encrypted_overlay=encrypted,
    )


def check_swarm_scope(
    cluster: ClusterSettings,
    postgres: PostgresSettings,
    redis: RedisSettings,
    monitoring: MonitoringSettings,
    backup: BackupSettings,
    tls: TlsSettings,
    maintenance: bool,
) -> None:
    """Refuses settings the swarm topology does not (yet) carry, instead of silently dropping them."""
    if not cluster.swarm:
        return
    if tls.mode == "acme":
        # The ACME sidecar joins nginx's network and PID namespaces (components/acme.py); a Swarm
        # service has no pid_mode or network_mode to join another task's, so it cannot run there.
        raise ConfigError(
            "catalogizer:tls.mode: acme is not available with cluster.mode=swarm yet (its sidecar shares "
            "nginx's container namespaces, which Swarm services cannot). Use tls.mode=files with a "
            "certificate obtained outside the stack, or cluster.mode=single."
        )
    for key, port in (("postgres", postgres.host_port), ("redis", redis.host_port)):
        if port is not None:
            # A service's published port has no bind address (the provider's endpoint_spec.ports has
            # target_port, published_port, publish_mode, protocol, name only), so 127.0.0.1 is impossible.
            raise ConfigError(
                f"catalogizer:{key}.hostPort: refused with cluster.mode=swarm: a Swarm service cannot publish on "
                f"127.0.0.1 only, so the port would be open on every interface of the node. Remove it and use "
                f"`docker exec` on the data node instead."
            )
    refused = {
        "catalogizer:monitoring.enabled": monitoring.enabled,
        # The scheduler is a container beside PostgreSQL on one host's bridge network; the swarm
        # topology has no such container yet (the pre-update push and drill run as hooks instead).
        "catalogizer:backup.scheduler": backup.scheduler,
        # The maintenance page is a switch of nginx's config volume; swarm's nginx.conf is a Swarm config.
        "catalogizer:maintenance": maintenance,
    }
    for key, on in refused.items():
        if on:
            raise ConfigError(
                f"{key}: not available with cluster.mode=swarm yet (the swarm topology deploys nginx, the API, "
                f"PostgreSQL, Redis and the deploy hooks: the pre-update backup with its off-host push and restore "
                f"drill, and restores; see docs/operations.md, 'Growing past one host'). Set it to false/remove it "
                f"for this stack, or use cluster.mode=single."
            )
