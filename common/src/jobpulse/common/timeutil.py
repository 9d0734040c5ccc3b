"""Time helpers: the wire uses integer milliseconds, the API seconds since the epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """Wall-clock time in ms since the epoch, the unit of every sample on the wire."""
    return time.time_ns() // 1_000_000


def ms_to_iso(ms: int) -> str:
    """ISO-8601 UTC with a Z suffix, as the documented APIs show timestamps."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def s_to_iso(seconds: float) -> str:
    return ms_to_iso(int(seconds * 1000))


def parse_duration(text: str) -> float:
    """Parse '10s', '5m', '2h', '14d' or a plain number of seconds.

    Config files are written by people; accepting units avoids a class of
    mistakes such as a retention of 14 seconds instead of 14 days.
    """
    text = text.strip()
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
    for suffix in ("ms", "s", "m", "h", "d", "w"):
        if text.endswith(suffix):
            number = text[: -len(suffix)]
            try:
                return float(number) * units[suffix]
            except ValueError:
                break
    try:
        return float(text)
    except ValueError as exc:
        raise ValueError(f"not a duration: {text!r} (use e.g. 10s, 5m, 2h, 14d)") from exc
