"""Unit conversions and human-readable rendering shared by the report and the API."""

from __future__ import annotations

import math

USER_HZ = 100  # cgroup v1 cpuacct.stat ticks per second on every Linux we support
NS_PER_S = 1_000_000_000
US_PER_S = 1_000_000

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: float | None) -> str:
    """1536 -> '1.5 KiB'; None/NaN -> '-' (not measured is not zero)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "unlimited"
    size = float(value)
    for unit in _BYTE_UNITS:
        if abs(size) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
