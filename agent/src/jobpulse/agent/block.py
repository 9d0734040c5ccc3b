"""The tick's fast path: every open reader of one layout read and parsed as one block, column by column.

Almost every tick reads the same cgroups as the last one. ``Readers`` then
hands the tick to its blocks: each is the readers of one class with the same
files present, their descriptors in one flat list. One ``map(os.pread)`` over
that list reads every file of every cgroup in C; slicing it by file kind gives
columns, which ``sources.columns`` parses in a few C calls each; rates and rows
are built with ``zip``. The per-reader path (``V1Reader.row``/``V2Reader.row``)
stays the reference: it runs whenever the set of cgroups changed, one vanished,
or anything here is unusual, and the answers are the same (tests compare them).

Each file is read into a buffer of twice its size (a power of two): the
per-reader path's 64 KiB per read, held for every file of the tick at once,
would spread the tick over ~80 MB of heap and cost more than the reads. A file
that fills its buffer (one of READ_SIZE excepted: the per-reader path reads no
more) is read again whole, and the sizes fitted again.

A block owns its readers' rate state while it lives (previous CPU time, peak,
time) and writes it back to the readers when it is dissolved, so the per-reader
path carries on exactly where the block left off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import repeat
from math import isnan
from operator import add, ge

from jobpulse.agent.sources import columns
from jobpulse.agent.sources.base import NAN, Row
from jobpulse.agent.sources.cgroup_v1 import V1Reader
from jobpulse.agent.sources.cgroup_v2 import V2Reader
from jobpulse.agent.sources.cgroupfs import READ_SIZE

Reader = V1Reader | V2Reader
# Buffer of a file before its size is known (the largest usual file, a v1 memory.stat, is ~1 KB); one
# that fills it is read again whole, so nothing is cut.
FIRST_READ = 4096
Layout = tuple[type[Reader], tuple[str, ...]]


class Stale(Exception):
    """A v2 cgroup's cpu.stat read as empty (the per-reader path takes it as gone); a removed
    cgroup shows as OSError (ENODEV) from the read instead. Either way the per-reader path reads."""


def layout_of(reader: Reader) -> Layout | None:
    """Readers with equal layouts share a block; None: this one cannot be in a block (files not kept)."""
    if not reader.files.kept:
        return None
    return type(reader), tuple(reader.files.fds)


class Block:
    """Readers of one layout, read and parsed together (see the module docstring)."""

    __slots__ = (
        "_at",
        "_cpu",
        "_fds",
        "_fitted",
        "_next",
        "_peak",
        "_sizes",
        "_stamp",
        "_v1",
        "_width",
        "allocs",
        "job_ids",
        "limits",
        "readers",
        "steps",
    )

    def __init__(self, readers: list[Reader], stamp: int) -> None:
        """``readers`` all have one layout and were all last read at ``stamp`` (by the per-reader path)."""
        first = readers[0]
        self.readers = readers
        self._v1 = isinstance(first, V1Reader)
        names = list(first.files.fds)
        self._width = len(names)
        self._at = {name: i for i, name in enumerate(names)}
        self._fds = [fd for reader in readers for fd in reader.files.slots]
        self._sizes = [FIRST_READ] * len(self._fds)  # fitted after the first read (no read here: see build)
        self._fitted = False
        self.job_ids = [reader.job_id for reader in readers]
        self.steps = [reader.step for reader in readers]
        self._stamp = stamp
        self._cpu = [reader.cpu for reader in readers]
        self._peak = [reader.peak for reader in readers]
        self._next: tuple[int, list[float], list[float]] | None = None
        self.allocs: list[float] = []
        self.limits: list[float] = []
        self.statics()

    def statics(self) -> None:
        """The allocated CPUs and memory limits, as each reader last read them."""
        self.allocs = [reader.alloc for reader in self.readers]
        self.limits = [reader.limit for reader in self.readers]

    def rows(self, stamp: int, refresh: bool = False) -> list[Row]:
        """This tick's rows; ``commit`` then keeps the new rate state. ``refresh``: re-read the limits.

        Raises:
            OSError: reading a file failed (ENODEV: a cgroup was removed).
            Stale: a cgroup read as empty.
        """
        datas = self._read()
        if any(map(ge, map(len, datas), self._sizes)):  # a file filled its buffer: read it whole
            grown = [
                i for i, (d, s) in enumerate(zip(datas, self._sizes, strict=True)) if len(d) >= s < READ_SIZE
            ]
            for i in grown:
                datas[i] = os.pread(self._fds[i], READ_SIZE, 0)
            if grown:
                self._fitted = False
        if not self._fitted:
            self._sizes, self._fitted = _fitted(datas), True
        if refresh:
            for reader in self.readers:
                reader.refresh()
            self.statics()
        at, width, n = self._at, self._width, len(self.readers)
        nans = [NAN] * n

        def column(name: str) -> list[bytes] | None:
            i = at.get(name)
            return None if i is None else datas[i::width]

        current, peak = _numbers(column("current"), nans), _numbers(column("peak"), nans)
        if self._v1:
            usage, ticks = column("usage"), column("ticks")
            if usage is None:
                user, system = nans, nans
            else:
                user, system = columns.v1_cpu(usage, [None] * n if ticks is None else ticks)
            stat, oom, io, pids = column("stat"), column("oom"), column("blkio"), column("pids")
            anon, cache = (nans, nans) if stat is None else columns.v1_memory(stat)
            ooms = nans if oom is None else columns.v1_oom_kills(oom)
            read, write = (nans, nans) if io is None else columns.v1_blkio(io)
        else:
            cpu = column("cpu")
            if cpu is None or b"" in cpu:
                raise Stale("cpu.stat missing or empty")
            user, system = columns.v2_cpu(cpu)
            stat, events, io, pids = column("stat"), column("events"), column("io"), column("pids")
            anon, cache = (nans, nans) if stat is None else columns.v2_memory(stat)
            ooms = nans if events is None else columns.v2_oom_kills(events)
            read, write = (nans, nans) if io is None else columns.v2_io(io)
        cpus = list(map(add, user, system))
        cores, peaks = self._rates(stamp, cpus, current, peak)
        self._next = (stamp, cpus, peaks)
        return list(
            zip(
                self.job_ids, self.steps, user, system, cores, self.allocs, current, peaks, anon, cache,
                self.limits, ooms, read, write, _numbers(pids, nans), nans, nans, nans,
                strict=True,
            )
        )  # fmt: skip

    def _read(self) -> list[bytes]:
        """Every file of every cgroup, in one C loop (no Python per file)."""
        return list(map(os.pread, self._fds, self._sizes, repeat(0)))

    def _rates(
        self, stamp: int, cpus: list[float], current: list[float], peak: list[float]
    ) -> tuple[list[float], list[float]]:
        """Cores used since the last tick and the peak: ``Rates.derive`` for the whole column."""
        last = self._stamp
        if last and stamp > last:
            seconds = (stamp - last) / 1000
            cores = [(c - p) / seconds if c >= p else NAN for c, p in zip(cpus, self._cpu, strict=True)]
        else:
            cores = [NAN] * len(cpus)
        if not any(map(isnan, peak)):
            return cores, peak
        # No memory.peak (kernels before 5.19): the running maximum of memory.current seen.
        return cores, [
            p if p == p else s if c != c or c <= s else c
            for p, c, s in zip(peak, current, self._peak, strict=True)
        ]

    def commit(self) -> None:
        """Keep this tick's readings as the base of the next tick's rates."""
        if self._next is not None:
            self._stamp, self._cpu, self._peak = self._next
            self._next = None

    def dissolve(self) -> None:
        """Hand the rate state back to the readers (the per-reader path takes over)."""
        self._next = None
        for reader, cpu, peak in zip(self.readers, self._cpu, self._peak, strict=True):
            reader.time_ms, reader.cpu, reader.peak = self._stamp, cpu, peak


def _fitted(datas: list[bytes]) -> list[int]:
    """Each file's read size: twice what it holds now, in powers of two (>= 64, <= READ_SIZE)."""
    return [min(READ_SIZE, max(64, 1 << (2 * len(data)).bit_length())) for data in datas]


def _numbers(data: columns.Data | None, nans: list[float]) -> list[float]:
    """A single-value file's column; NaN for all when the layout has no such file."""
    return nans if data is None else columns.numbers(data)


def build(readers: Iterable[Reader]) -> list[Block] | None:
    """Blocks for these readers, one per layout; None if one cannot be in a block.

    The readers must all have been read by the same per-reader tick (the blocks carry on
    their rate state from it). Building reads nothing, so it cannot fail on a cgroup that
    vanished meanwhile: the first ``rows`` does, and the per-reader path takes that tick.
    """
    groups: dict[Layout, list[Reader]] = {}
    stamps: set[int] = set()
    for reader in readers:
        layout = layout_of(reader)
        if layout is None:
            return None
        stamps.add(reader.time_ms)
        groups.setdefault(layout, []).append(reader)
    if len(stamps) != 1 or not groups:
        return None
    stamp = stamps.pop()
    return [Block(group, stamp) for group in groups.values()]
