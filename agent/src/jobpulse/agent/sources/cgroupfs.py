"""Parsing helpers for the kernel's cgroup file formats, shared by the v1 and v2 readers."""

from __future__ import annotations

import math
from pathlib import Path

NAN = math.nan


def read_text(path: Path) -> str | None:
    """File contents, or None when the file (or its cgroup) does not exist.

    A missing file is normal: optional controllers, or a job that ended between
    listing and reading.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read().decode()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == 19:  # ENODEV: the cgroup was removed while we read it
            return None
        raise


def read_number(path: Path) -> float:
    """A single-value file ('123' or 'max') as a float; NaN if absent, +inf for 'max'."""
    text = read_text(path)
    if text is None:
        return NAN
    text = text.strip()
    if text == "max":
        return math.inf
    try:
        return float(text)
    except ValueError:
        return NAN


def read_keyed(path: Path) -> dict[str, float] | None:
    """A flat keyed file ('key value' per line: cpu.stat, memory.stat, memory.events)."""
    text = read_text(path)
    if text is None:
        return None
    result: dict[str, float] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value:
            try:
                result[key] = float(value)
            except ValueError:
                continue
    return result


def count_cpus(cpulist: str | None) -> float:
    """Number of CPUs in a cpuset list such as '0-3,8,10-11'; NaN if unknown."""
    if cpulist is None:
        return NAN
    cpulist = cpulist.strip()
    if not cpulist:
        return NAN
    total = 0
    for part in cpulist.split(","):
        low, _, high = part.partition("-")
        total += (int(high) - int(low) + 1) if high else 1
    return float(total)
