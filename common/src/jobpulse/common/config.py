"""Configuration loading: defaults < TOML file < JOBPULSE_* environment variables.

Both daemons describe their settings as (nested) dataclasses; this module
fills them in. Every field can be overridden from the environment as
``JOBPULSE_<FIELD>`` for top-level fields and ``JOBPULSE_<SECTION>_<FIELD>``
for fields of a nested section, so systemd drop-ins and the demo can change
anything without writing files.

A field may carry checks beside its type, ``Annotated[int, Bounds(ge=0, le=65535)]`` or any
:class:`Check`: a value that fails one stops the load with the setting's name and source, the same
way a value of the wrong type does (never a traceback from deep inside the daemon later).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ENV_PREFIX = "JOBPULSE_"
# What a person writes for a number; int()/float() also take '٣', '1_000', 'nan' and 'infinity'.
_ASCII_INT = re.compile(r"[-+]?[0-9]+")
_ASCII_FLOAT = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


class ConfigError(ValueError):
    """A setting is malformed; the message names the setting and the source."""


class Check:
    """A check of a setting's converted value, attached with ``Annotated[type, check]``.

    Subclasses implement ``__call__`` and raise ``ValueError`` saying what is wrong (the loader adds
    the setting's name and source)."""

    def __call__(self, value: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Bounds(Check):
    """A number within bounds: ``ge``/``gt`` below, ``le`` above (NaN is never within)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None

    def __call__(self, value: Any) -> None:
        low = (
            f"[{self.ge:.15g}"
            if self.ge is not None
            else f"({self.gt:.15g}"
            if self.gt is not None
            else "(-inf"
        )
        high = f"{self.le:.15g}]" if self.le is not None else "inf)"
        inside = value == value  # NaN compares unequal to itself
        inside = inside and (self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
        inside = inside and (self.le is None or value <= self.le)
        if not inside:
            raise ValueError(f"{value!r} is out of range {low}, {high}")


@dataclasses.dataclass(frozen=True)
class OneOf(Check):
    """One of a fixed set of words (compared case-insensitively)."""

    choices: tuple[str, ...]

    def __call__(self, value: Any) -> None:
        if str(value).lower() not in {c.lower() for c in self.choices}:
            raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")


def _convert(name: str, raw: Any, target: Any, source: str) -> Any:
    origin = typing.get_origin(target)
    if origin is typing.Annotated:
        base, *checks = typing.get_args(target)
        value = _convert(name, raw, base, source)
        for check in checks:
            if isinstance(check, Check):
                try:
                    check(value)
                except ValueError as exc:
                    raise ConfigError(f"setting {name!r} from {source}: {exc}") from exc
        return value
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
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise ValueError(f"expected an integer, got {raw!r}")
            if isinstance(raw, str) and not _ASCII_INT.fullmatch(raw.strip()):
                raise ValueError(f"expected an integer (ASCII digits), got {raw!r}")
            return int(raw)
        if target is float:
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError(f"expected a number, got {raw!r}")
            if isinstance(raw, str) and not _ASCII_FLOAT.fullmatch(raw.strip()):
                raise ValueError(f"expected a number (ASCII digits), got {raw!r}")
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
    hints = typing.get_type_hints(type(obj), include_extras=True)
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
    hints = typing.get_type_hints(type(obj), include_extras=True)
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
        ConfigError: a file that cannot be parsed, an unknown key, a value of the wrong type or one
            that fails its field's checks (:class:`Bounds`, :class:`OneOf`, any :class:`Check`).
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
