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
        return value.strip()

    def integer(self, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
        value = self.raw.get(name, default)
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
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


def port(section: Section, name: str, default: int | None) -> int | None:
    return section.integer(name, default, 1, 65535)


def memory(section: Section, name: str, default: int, service: str) -> int:
    floor = MIN_MEMORY_MB[service]
    value = section.integer(name, default, 1, 1024 * 1024)
    assert value is not None
    if value < floor:
        raise ConfigError(
            f"{section.full_key(name)}: {value} MB is below the floor of {floor} MB for {service}; "
            f"raise it (default {default})."
        )
    return value


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
        return value.strip()

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
        return value
