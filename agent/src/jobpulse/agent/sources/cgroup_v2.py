"""cgroup v2 reader for one job (or step) directory of the unified hierarchy.

``V2Reader`` keeps the directory's files open and re-reads them with pread each
tick (the agent's hot path); ``read_job`` is the one-shot form for ``once`` and
tests. Absent files (io and pids are optional controllers in Slurm, memory.peak
needs kernel 5.19) are "not measured": NaN, never 0.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from jobpulse.agent.sources.base import NAN, JobReading, NoData, Rates, Row, reading_of
from jobpulse.agent.sources.cgroupfs import (
    CgroupGone,
    FileSet,
    count_cpus,
    keyed_value,
    limit_of,
    number_value,
    read_text,
)
from jobpulse.common.timeutil import now_ms
from jobpulse.common.units import US_PER_S

_FILES = {
    "cpu": "cpu.stat",
    "current": "memory.current",
    "peak": "memory.peak",
    "stat": "memory.stat",
    "events": "memory.events",
    "io": "io.stat",
    "pids": "pids.current",
}
_RBYTES = re.compile(rb" rbytes=(\d+)")
_WBYTES = re.compile(rb" wbytes=(\d+)")


def parse_io(data: bytes | None) -> tuple[float, float]:
    """Sum rbytes/wbytes over the devices of io.stat; NaN if the io controller is not enabled."""
    if data is None:
        return math.nan, math.nan
    return float(sum(map(int, _RBYTES.findall(data)))), float(sum(map(int, _WBYTES.findall(data))))


def allocated_cpus(directory: Path | str) -> float:
    text = read_text(os.path.join(directory, "cpuset.cpus.effective"))
    if text is None:
        text = read_text(os.path.join(directory, "cpuset.cpus"))
    return count_cpus(text)


def parse_cpu(data: bytes) -> tuple[float, float]:
    """(user, system) seconds from cpu.stat."""
    # The kernel prints these files in a fixed order: one split reads the leading keys,
    # and the per-key lookup answers if a kernel ever orders them differently.
    p = data.split(None, 6)
    if len(p) > 5 and p[2] == b"user_usec" and p[4] == b"system_usec":
        return float(p[3]) / US_PER_S, float(p[5]) / US_PER_S
    return keyed_value(data, b"user_usec ") / US_PER_S, keyed_value(data, b"system_usec ") / US_PER_S


def parse_memory_stat(data: bytes | None) -> tuple[float, float]:
    """(anon, file) bytes from memory.stat."""
    if data is None:
        return NAN, NAN
    p = data.split(None, 4)
    if len(p) > 3 and p[0] == b"anon" and p[2] == b"file":
        return float(p[1]), float(p[3])
    return keyed_value(data, b"anon "), keyed_value(data, b"file ")


def parse_oom_kills(data: bytes | None) -> float:
    """oom_kill from memory.events (NaN without the memory controller)."""
    if data is None:
        return NAN
    p = data.split(None, 10)
    return float(p[9]) if len(p) > 9 and p[8] == b"oom_kill" else keyed_value(data, b"oom_kill ")


class V2Reader(Rates):
    """One cgroup v2 directory with its files held open between ticks.

    ``limits`` is the ancestors' memory limits shared by all ``Readers`` (see ``limit_of``).
    """

    __slots__ = (
        "_dirs",
        "_fresh",
        "_limits",
        "alloc",
        "directory",
        "files",
        "job_id",
        "limit",
        "step",
    )

    def __init__(
        self,
        directory: Path,
        job_id: str,
        step: str = "",
        top: Path | None = None,
        keep: bool = True,
        limits: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.job_id = job_id
        self.step = step
        self.files = FileSet({name: directory / file for name, file in _FILES.items()}, keep)
        if self.files.kept and "cpu" not in self.files.fds:
            self.files.close()
            raise NoData(f"cgroup {directory} vanished")
        self._fresh = True
        self.alloc = NAN
        self.limit = NAN
        self._limits = {} if limits is None else limits
        # (directory, top) as strings: refresh() makes no Path objects.
        self._dirs = (str(directory), "" if top is None else str(top))

    def row(self, stamp: int, rates: bool = True) -> Row:
        """This tick's row: counters, rates against the last reading; limits read at the first read.

        ``Readers`` re-reads the limits (``refresh``) every STATIC_EVERY ticks.
        ``rates`` False: no cores used, memory.peak as the kernel says (NaN if it has none).

        Raises:
            NoData: the cgroup is gone (the job ended).
        """
        try:
            cpu, current_b, peak_b, stat, events, io, pids_b = self.files.read_all()
        except CgroupGone as exc:
            raise NoData(f"cgroup {self.directory} vanished: {exc}") from exc
        if not cpu:
            raise NoData(f"cgroup {self.directory} vanished")
        user, system = parse_cpu(cpu)
        try:  # the kernel's usual output; anything else takes the careful path below
            current = float(current_b) if current_b is not None else NAN
            peak = float(peak_b) if peak_b is not None else NAN
            pids = float(pids_b) if pids_b is not None else NAN
        except ValueError:
            current, peak, pids = number_value(current_b), number_value(peak_b), number_value(pids_b)
        anon, file = parse_memory_stat(stat)
        read, write = parse_io(io)
        if self._fresh:  # later refreshes: every STATIC_EVERY ticks, by Readers (or a block)
            self._fresh = False
            self.refresh()
        if rates:
            cores, peak = self.derive(stamp, user + system, current, peak)
        else:
            cores = NAN
        return (
            self.job_id,
            self.step,
            user,
            system,
            cores,
            self.alloc,
            current,
            peak,
            anon,
            file,
            self.limit,
            parse_oom_kills(events),
            read,
            write,
            pids,
            NAN,
            NAN,
            NAN,
        )

    def refresh(self) -> None:
        """Re-read what changes rarely (cpuset, limit); retry keeping the files open if that failed."""
        directory, top = self._dirs
        self.alloc = allocated_cpus(directory)
        # memory.max, or the tightest ancestor's below ``top`` when it reads 'max' (+inf: none has one).
        self.limit = limit_of(directory, "memory.max", top, self._limits)
        if not self.files.kept:
            self.files.keep()

    def read(self) -> JobReading:
        """One reading as a ``JobReading``, stamped now: the kernel's figures alone, no rates.

        Raises:
            NoData: the cgroup is gone (the job ended).
        """
        stamp = now_ms()
        return reading_of(self.row(stamp, rates=False), stamp)

    def close(self) -> None:
        self.files.close()


def read_job(directory: Path, job_id: str, step: str = "", top: Path | None = None) -> JobReading:
    """Read one v2 cgroup directory once.

    Raises:
        NoData: the directory is gone (the job ended between listing and reading).
    """
    reader = V2Reader(directory, job_id, step, top)
    try:
        return reader.read()
    finally:
        reader.close()
