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


def human_seconds(seconds: float) -> str:
    """Seconds as d-hh:mm:ss, the way Slurm prints elapsed times."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def parse_size(text: str) -> int:
    """Parse Slurm/K8s-style sizes ('8G', '512M', '1.5GiB', '1000') to bytes."""
    text = text.strip()
    if not text:
        raise ValueError("empty size")
    multipliers = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
    upper = text.upper().removesuffix("IB").removesuffix("B")
    if upper and upper[-1] in multipliers:
        return int(float(upper[:-1]) * multipliers[upper[-1]])
    return int(float(upper))


def nan_to_none(value: float) -> float | None:
    """NaN on the wire means 'not measured'; JSON and SQL say that with null."""
    return None if math.isnan(value) else value
