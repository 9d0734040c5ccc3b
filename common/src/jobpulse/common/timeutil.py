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
