"""The cgroup files of many cgroups parsed column by column: one regex or one ``map`` per file kind.

The per-cgroup parsers (``cgroup_v1``, ``cgroup_v2``) cost a few microseconds of
Python per cgroup, as much as the kernel takes to produce the files. Here each
kind of file is parsed for every cgroup of the tick at once: the contents are
joined with a NUL before each (NUL never occurs in these text files) and one
``findall`` anchored on that NUL picks the wanted values out of all of them, in
C. A column whose match count is not one per cgroup (a kernel printing another
format, an unexpected value) is parsed again file by file with the per-cgroup
parsers, which handle every variant: the answer is the same either way.

Each function returns lists with one float per cgroup, in the order given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter, truediv

from jobpulse.agent.sources import cgroup_v1, cgroup_v2
from jobpulse.agent.sources.cgroupfs import number_value
from jobpulse.common.units import NS_PER_S, US_PER_S

Column = list[float]
Data = Sequence[bytes | None]

_V2_CPU = re.compile(rb"\0usage_usec \d+\nuser_usec (\d+)\nsystem_usec (\d+)\n")
# io.stat with one device line or none (no I/O yet); the NUL after it is the next file's (one is appended).
_V2_IO = re.compile(rb"\0(?:\S+ rbytes=(\d+) wbytes=(\d+)[^\n]*\n)?(?=\0)")
_V2_OOM = re.compile(rb"\0low \d+\nhigh \d+\nmax \d+\noom \d+\noom_kill (\d+)\n")
_V1_OOM = re.compile(rb"\0oom_kill_disable \d+\nunder_oom \d+\noom_kill (\d+)\n")
_first, _second, _third, _fourth = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)


def _joined(data: Data) -> bytes | None:
    """NUL + the files joined by NULs; None when a file is absent (the careful path then decides)."""
    try:
        return b"\0" + b"\0".join(data)  # type: ignore[arg-type]
    except TypeError:
        return None


def _pairs(pattern: re.Pattern[bytes], data: Data) -> list[tuple[bytes, bytes]] | None:
    """Two values per file from one ``findall``; None unless every file matched exactly once."""
    joined = _joined(data)
    if joined is None:
        return None
    found: list[tuple[bytes, bytes]] = pattern.findall(joined)
    return found if len(found) == len(data) else None


def numbers(data: Data) -> Column:
    """Single-value files (memory.current, pids.current): NaN when absent, +inf for 'max'."""
    try:
        return list(map(float, data))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return [number_value(d) for d in data]


def singles(pattern: re.Pattern[bytes], data: Data, careful: Callable[[bytes | None], float]) -> Column:
    """One value per file from one ``findall``, or file by file with ``careful`` when the count is off."""
    joined = _joined(data)
    found: list[bytes] = [] if joined is None else pattern.findall(joined)
    if len(found) == len(data):
        return list(map(float, found))
    return [careful(d) for d in data]


def _each(parse: Callable[..., tuple[float, float]], *data: Sequence[object]) -> tuple[Column, Column]:
    """``parse`` applied file by file (to each cgroup's arguments), its pairs turned into two columns."""
    both = list(map(parse, *data))
    return list(map(_first, both)), list(map(_second, both))


def _split(
    pairs: list[tuple[bytes, bytes]] | None,
    data: Data,
    careful: Callable[[bytes | None], tuple[float, float]],
    scale: float = 1.0,
) -> tuple[Column, Column]:
    """Two float columns (divided by ``scale``) from ``_pairs``, or from ``careful`` file by file."""
    if pairs is None:
        return _each(careful, data)
    first, second = map(float, map(_first, pairs)), map(float, map(_second, pairs))
    if scale != 1.0:
        return list(map(truediv, first, repeat(scale))), list(map(truediv, second, repeat(scale)))
    return list(first), list(second)


def v2_cpu(data: Data) -> tuple[Column, Column]:
    """(user, system) seconds from cpu.stat."""
    return _split(_pairs(_V2_CPU, data), data, cgroup_v2.parse_cpu, US_PER_S)  # type: ignore[arg-type]


def v2_memory(data: Data) -> tuple[Column, Column]:
    """(anon, file) bytes from memory.stat, whose first two lines they are.

    memory.stat is ~1.2 KB: joining 200 of them costs more than splitting each one's head in C.
    """
    try:
        heads = list(map(bytes.split, data, repeat(None), repeat(4)))  # type: ignore[arg-type]
        if heads and list(map(_first, heads)).count(b"anon") == len(heads) == list(map(_third, heads)).count(
            b"file"
        ):
            return list(map(float, map(_second, heads))), list(map(float, map(_fourth, heads)))
    except (TypeError, IndexError, ValueError):
        pass
    return _each(cgroup_v2.parse_memory_stat, data)


def v2_oom_kills(data: Data) -> Column:
    """oom_kill from memory.events (its fifth line)."""
    return singles(_V2_OOM, data, cgroup_v2.parse_oom_kills)


def v2_io(data: Data) -> tuple[Column, Column]:
    """(read, write) bytes from io.stat: summed over its devices, 0 before any I/O (as ``parse_io``).

    The column regex takes files with one device line or none; with more, each file is summed alone.
    """
    joined = _joined(data)
    found = [] if joined is None else _V2_IO.findall(joined + b"\0")
    if len(found) == len(data):
        return [float(r) if r else 0.0 for r, _ in found], [float(w) if w else 0.0 for _, w in found]
    return _each(cgroup_v2.parse_io, data)


def v1_cpu(usage: Data, ticks: Data) -> tuple[Column, Column]:
    """(user, system) seconds: cpuacct.usage split by cpuacct.stat's tick proportion, as V1Reader.row."""
    return _each(cgroup_v1.split_usage, [u / NS_PER_S for u in numbers(usage)], ticks)


def v1_memory(data: Data) -> tuple[Column, Column]:
    """(anon, cache) bytes: memory.stat's hierarchical totals (total_rss, total_cache), file by file
    (they sit mid-file: joining ~0.8 KB files costs more than searching each)."""
    try:
        found = list(map(cgroup_v1.TOTALS.findall, data))  # type: ignore[arg-type]
    except TypeError:
        found = []
    if found and list(map(len, found)).count(1) == len(found):
        pairs = list(map(_first, found))
        return list(map(float, map(_second, pairs))), list(map(float, map(_first, pairs)))
    return _each(cgroup_v1.parse_memory_stat, data)


def v1_oom_kills(data: Data) -> Column:
    """oom_kill from memory.oom_control (its third line)."""
    return singles(_V1_OOM, data, cgroup_v1.parse_oom_kills)


def v1_blkio(data: Data) -> tuple[Column, Column]:
    """Read/Write bytes from blkio.throttle.io_service_bytes, file by file (a line per device and op)."""
    return _each(cgroup_v1.parse_blkio, data)
