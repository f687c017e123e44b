"""Shape checks shared by the section loaders: image references, host paths, addresses.

Each returns nothing and raises ``ConfigError`` naming the key, the problem and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from settings.reader import ConfigError

# The reference grammar of distribution/reference (reference.go, used by the Docker CLI):
# [domain[:port]/]path-component(/path-component)*[:tag][@digest]. Every part starts with a
# letter or digit, so a value can never begin with '-' (an option to `docker run`) and never
# carries ';', spaces or quotes into any argv or shell.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE_RE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?", flags=re.ASCII
)

# Host folders that must never be bind-mounted into a container, nor be a parent of one:
# they hold the host's configuration, kernel interfaces, boot files, binaries, the Docker
# socket (/var/run/docker.sock, /run on Debian) or Docker's own data (images, volumes).
SYSTEM_PATHS = tuple(
    Path(p)
    for p in (
        "/etc",
        "/var/run",
        "/run",
        "/proc",
        "/sys",
        "/boot",
        "/usr",
        "/dev",
        "/var/lib/docker",
        "/var/lib/containerd",
    )
)

_DNS_NAME_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
    flags=re.ASCII,
)


def check_image(key: str, value: str) -> None:
    if len(value) > 255 or not IMAGE_REFERENCE_RE.fullmatch(value):
        raise ConfigError(
            f"{key}: {value!r} is not a valid image reference; use [registry/]name[:tag][@sha256:digest] with "
            "lower-case names, e.g. postgres:15-alpine or registry.example.com/team/api:1.2."
        )


def check_host_path(key: str, path: Path) -> None:
    """Refuses '/', the system folders above, anything inside them and any parent of them."""
    for system in SYSTEM_PATHS:
        if path == system or system in path.parents or path in system.parents:
            raise ConfigError(
                f"{key}: {path} is or contains a system folder ({system}); mounting it into a container "
                "would expose the host. Use a dedicated folder such as /srv/catalogizer/<name>."
            )
    if str(path) == "/" or ":" in str(path) or "," in str(path):
        raise ConfigError(f"{key}: {path} cannot be mounted safely; use a dedicated folder without ':' or ','.")


def check_address(key: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    if not _DNS_NAME_RE.fullmatch(value):
        raise ConfigError(
            f"{key}: {value!r} is neither an IP address nor a DNS name; e.g. 127.0.0.1 or proxy.internal."
        )
