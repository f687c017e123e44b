"""Reading raw config: typed getters whose errors name the full key and the fix."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi

from settings.model import MIN_MEMORY_MB, NAMESPACE, STRUCTURED_KEYS


class ConfigError(ValueError):
    """A stack setting is invalid; the message says which key and how to fix it."""


class Section:
    """One structured config value: typed getters that name the full key in errors."""

    def __init__(self, key: str, raw: Any, allowed: tuple[str, ...]) -> None:
        self.key = key
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(
                f"{self.key}: expected an object, got {type(raw).__name__}. "
                f"Set its fields with `pulumi config set --path '{self.key}.<field>' <value>`."
            )
        for name in raw:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(
                    f"{self.key}: unknown key '{name}'.{hint} Allowed keys: {', '.join(allowed)}. "
                    f"Remove it with `pulumi config rm --path '{self.key}.{name}'`."
                )
        self.raw: dict[str, Any] = raw

    def full_key(self, name: str) -> str:
        return f"{self.key}.{name}"

    def text(self, name: str, default: str | None) -> str | None:
        value = self.raw.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.full_key(name)}: expected a non-empty string, got {value!r}.")
        return no_stray_whitespace(self.full_key(name), value)

    def integer(self, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
        value = self.raw.get(name, default)
        if value is None:
            return None
        # ASCII digits only: Python's \d and int() also accept e.g. Arabic-Indic digits ("٨٠"),
        # which no operator means and which would read as a different number than shown.
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value, flags=re.ASCII):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.full_key(name)}: expected a whole number, got {value!r}.")
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"{self.full_key(name)}: {value} is outside {minimum}-{maximum}. "
                f"Set it with `pulumi config set --path '{self.full_key(name)}' <number>`."
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw.get(name, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"{self.full_key(name)}: expected true or false, got {value!r}.")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise ConfigError(f"{self.full_key(name)}: unknown value {value!r}. Use one of: {', '.join(choices)}.")
        return value


def no_stray_whitespace(key: str, value: str) -> str:
    """Refuses leading/trailing whitespace: a pasted newline would otherwise end up in a file,
    a header or a name silently (Pulumi stores the value exactly as given)."""
    if value != value.strip():
        raise ConfigError(f"{key}: {value!r} starts or ends with whitespace or a newline; remove it.")
    return value


def port(section: Section, name: str, default: int | None) -> int | None:
    return section.integer(name, default, 1, 65535)


def memory(section: Section, name: str, default: int, service: str) -> int:
    floor = MIN_MEMORY_MB[service]
    value = section.integer(name, default, 1, 1024 * 1024)
    assert value is not None
    total = host_memory_mb()
    if total is not None and value > total:
        raise ConfigError(
            f"{section.full_key(name)}: {value} MB is more than this host's {total} MB of memory; "
            f"lower it (default {default})."
        )
    if value < floor:
        raise ConfigError(
            f"{section.full_key(name)}: {value} MB is below the floor of {floor} MB for {service}; "
            f"raise it (default {default})."
        )
    return value


def host_memory_mb() -> int | None:
    """Total memory of the machine running the program, which is the Docker host unless
    DOCKER_HOST points elsewhere (then None: the remote total is unknown here)."""
    if os.environ.get("DOCKER_HOST", "unix://").startswith(("ssh://", "tcp://")):
        return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return None


def cpus(section: Section, name: str, default: str) -> str:
    """A CPU limit for Docker's --cpus: a decimal like 0.5 or 2, at most the host's CPU count."""
    local = not os.environ.get("DOCKER_HOST", "unix://").startswith(("ssh://", "tcp://"))
    host = os.cpu_count() if local else None
    if name not in section.raw:
        # A default never exceeds a small host: Docker refuses --cpus above the CPU count.
        return default if host is None or float(default) <= host else str(host)
    raw = section.raw[name]
    text = str(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,2})?", text, flags=re.ASCII):
        raise ConfigError(f"{section.full_key(name)}: expected a number of CPUs like 0.5 or 2, got {raw!r}.")
    value = float(text)
    if value < 0.1 or (host is not None and value > host):
        limit = f"0.1 to {host}" if host else "at least 0.1"
        raise ConfigError(
            f"{section.full_key(name)}: {text} CPUs is outside {limit} (this host's CPUs); e.g. {default}."
        )
    return text


def resolve(path: str) -> Path:
    # Pulumi runs the program from the project folder, so relative paths are relative to it.
    return Path(os.path.expanduser(path)).resolve()


class Loader:
    """Reads raw values from pulumi.Config plus the secret-key set; kept separate for tests."""

    def __init__(self, config: pulumi.Config, is_secret: Callable[[str], bool]) -> None:
        self.config = config
        self.is_secret = is_secret

    def section(self, name: str) -> Section:
        key = f"{NAMESPACE}:{name}"
        allowed = STRUCTURED_KEYS[name]
        raw = self.config.get(name)
        if raw is None:
            return Section(key, None, allowed)
        try:
            parsed = self.config.get_object(name)
        except Exception:
            parsed = raw  # a plain string: Section reports it with the fix
        return Section(key, parsed, allowed)

    def text(self, name: str, default: str | None) -> str | None:
        value = self.config.get(name)
        if value is None:
            return default
        if not value.strip():
            raise ConfigError(f"{NAMESPACE}:{name}: must not be empty; remove it to use the default.")
        return no_stray_whitespace(f"{NAMESPACE}:{name}", value)

    def secret(self, name: str) -> str | None:
        key = f"{NAMESPACE}:{name}"
        value = self.config.get(name)
        if value is None:
            return None
        if not self.is_secret(key):
            raise ConfigError(
                f"{key}: is stored in plain text. Remove it and set it again as a secret: "
                f"`pulumi config rm {key} && pulumi config set --secret {key} <value>`."
            )
        if value != value.strip():
            # Usually a newline from `echo ... | pulumi config set`; the value itself is never echoed.
            raise ConfigError(
                f"{key}: starts or ends with whitespace or a newline; set it again without them "
                f"(`printf %s '<value>' | pulumi config set --secret {key}`)."
            )
        return value
