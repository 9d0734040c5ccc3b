"""Settings carry their checks (``Annotated[type, Bounds(...)]``): bad values are named, with the source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import pytest
from jobpulse.common import config
from jobpulse.common.config import Bounds, OneOf


@dataclass
class Section:
    limit: Annotated[int, Bounds(ge=0, le=10)] = 1


@dataclass
class Example:
    port: Annotated[int, Bounds(ge=0, le=65535)] = 80
    ttl: Annotated[float, Bounds(gt=0)] = 1.0
    level: Annotated[str, OneOf(("INFO", "DEBUG"))] = "INFO"
    plain: int = 0
    section: Section = field(default_factory=Section)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"JOBPULSE_PORT": "99999"}, "JOBPULSE_PORT"),
        ({"JOBPULSE_PORT": "\u0663"}, "JOBPULSE_PORT"),
        ({"JOBPULSE_PORT": "1_0"}, "JOBPULSE_PORT"),
        ({"JOBPULSE_TTL": "0"}, "JOBPULSE_TTL"),
        ({"JOBPULSE_TTL": "nan"}, "JOBPULSE_TTL"),
        ({"JOBPULSE_TTL": "inf"}, "JOBPULSE_TTL"),
        ({"JOBPULSE_LEVEL": "LOUD"}, "JOBPULSE_LEVEL"),
        ({"JOBPULSE_PLAIN": "\u00b2"}, "JOBPULSE_PLAIN"),
        ({"JOBPULSE_SECTION_LIMIT": "11"}, "JOBPULSE_SECTION_LIMIT"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(env: dict[str, str], name: str) -> None:
    with pytest.raises(config.ConfigError, match=f"'{name}' from environment"):
        config.load(Example, None, env=env)


def test_good_values_and_other_sources() -> None:
    s = config.load(
        Example, None, env={"JOBPULSE_PORT": " 8100 ", "JOBPULSE_TTL": "2.5e1", "JOBPULSE_LEVEL": "debug"}
    )
    assert (s.port, s.ttl, s.level) == (8100, 25.0, "debug")
    with pytest.raises(config.ConfigError, match="'port' from command line: 70000 is out of range"):
        config.load(Example, None, env={}, overrides={"port": 70000})
