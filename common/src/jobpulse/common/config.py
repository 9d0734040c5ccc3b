"""Configuration loading: defaults < TOML file < JOBPULSE_* environment variables.

Both daemons describe their settings as (nested) dataclasses; this module
fills them in. Every field can be overridden from the environment as
``JOBPULSE_<FIELD>`` for top-level fields and ``JOBPULSE_<SECTION>_<FIELD>``
for fields of a nested section, so systemd drop-ins and the demo can change
anything without writing files.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ENV_PREFIX = "JOBPULSE_"


class ConfigError(ValueError):
    """A setting is malformed; the message names the setting and the source."""


def _convert(name: str, raw: Any, target: Any, source: str) -> Any:
    origin = typing.get_origin(target)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(target) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw == "" and len(args) < len(typing.get_args(target))):
            return None
        return _convert(name, raw, args[0], source)
    try:
        if target is bool:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(raw, str) and raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"expected a boolean, got {raw!r}")
        if target is int:
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            return int(raw)
        if target is float:
            return float(raw)
        if target is str:
            if not isinstance(raw, str | int | float):
                raise ValueError(f"expected a string, got {raw!r}")
            return str(raw)
        if target is Path:
            return Path(str(raw))
        if origin is list:
            (item_type,) = typing.get_args(target)
            if isinstance(raw, str):
                raw = [part.strip() for part in raw.split(",") if part.strip()]
            return [_convert(name, item, item_type, source) for item in raw]
        if origin is dict:
            if not isinstance(raw, dict):
                raise ValueError("expected a table")
            return dict(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} from {source}: {exc}") from exc
    return raw


def _apply(obj: Any, data: dict[str, Any], prefix: str, source: str) -> None:
    hints = typing.get_type_hints(type(obj))
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {prefix + key!r} in {source}")
        target = hints[key]
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"setting {prefix + key!r} in {source} must be a table")
            _apply(current, value, f"{prefix}{key}.", source)
        else:
            setattr(obj, key, _convert(prefix + key, value, target, source))


def _apply_env(obj: Any, env: typing.Mapping[str, str], prefix: str) -> None:
    hints = typing.get_type_hints(type(obj))
    for field in dataclasses.fields(obj):
        current = getattr(obj, field.name)
        env_name = f"{prefix}{field.name.upper()}"
        if dataclasses.is_dataclass(current):
            _apply_env(current, env, env_name + "_")
        elif env_name in env:
            setattr(obj, field.name, _convert(env_name, env[env_name], hints[field.name], "environment"))


def load(
    cls: type[T],
    path: Path | None = None,
    env: typing.Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> T:
    """Build ``cls`` from its defaults, the TOML file at ``path`` (if it exists), then the environment.

    Raises:
        ConfigError: a file that cannot be parsed, an unknown key or a value of the wrong type.
    """
    obj = cls()
    if path is not None and path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        _apply(obj, data, "", str(path))
    _apply_env(obj, os.environ if env is None else env, ENV_PREFIX)
    if overrides:
        _apply(obj, {k: v for k, v in overrides.items() if v is not None}, "", "command line")
    return obj
