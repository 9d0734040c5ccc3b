"""cgroup v2 reader for one job (or step) directory of the unified hierarchy.

``V2Reader`` keeps the directory's files open and re-reads them with pread each
tick (the agent's hot path); ``read_job`` is the one-shot form for ``once`` and
tests. Absent files (io and pids are optional controllers in Slurm, memory.peak
needs kernel 5.19) are "not measured": NaN, never 0.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from jobpulse.agent.sources.base import JobReading, NoData
from jobpulse.agent.sources.cgroupfs import (
    CgroupGone,
    FileSet,
    count_cpus,
    keyed_value,
    number_value,
    read_number,
    read_text,
)
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
# Limits and cpusets change rarely (scontrol update): re-read them every this many reads.
STATIC_EVERY = 30


def parse_io(data: bytes | None) -> tuple[float, float]:
    """Sum rbytes/wbytes over the devices of io.stat; NaN if the io controller is not enabled."""
    if data is None:
        return math.nan, math.nan
    return float(sum(map(int, _RBYTES.findall(data)))), float(sum(map(int, _WBYTES.findall(data))))


def effective_limit(directory: Path, top: Path | None = None) -> float:
    """memory.max of the cgroup, or the tightest ancestor's when it reads 'max'; +inf if none has one.

    NaN when the memory controller is not enabled for the cgroup at all.
    """
    own = read_number(directory / "memory.max")
    if math.isnan(own):
        return math.nan
    limit = own
    parent = directory.parent
    while parent != directory and (top is None or parent != top) and parent.name:
        value = read_number(parent / "memory.max")
        if math.isnan(value):
            break
        limit = min(limit, value)
        directory, parent = parent, parent.parent
    return limit


def allocated_cpus(directory: Path) -> float:
    text = read_text(directory / "cpuset.cpus.effective")
    if text is None:
        text = read_text(directory / "cpuset.cpus")
    return count_cpus(text)


class V2Reader:
    """One cgroup v2 directory with its files held open between ticks."""

    def __init__(
        self, directory: Path, job_id: str, step: str = "", top: Path | None = None, keep: bool = True
    ) -> None:
        self.directory = directory
        self.job_id = job_id
        self.step = step
        self.top = top
        self.files = FileSet({name: directory / file for name, file in _FILES.items()}, keep)
        if keep and "cpu" not in self.files.fds:
            self.files.close()
            raise NoData(f"cgroup {directory} vanished")
        self._reads = 0
        self._alloc = math.nan
        self._limit = math.nan

    def read(self) -> JobReading:
        """Raises NoData when the cgroup is gone (the job ended)."""
        try:
            cpu, current, peak, stat, events, io, pids = self.files.read_all()
        except CgroupGone as exc:
            raise NoData(f"cgroup {self.directory} vanished: {exc}") from exc
        if not cpu:
            raise NoData(f"cgroup {self.directory} vanished")
        reading = JobReading(self.job_id, self.step)
        # The kernel prints these files in a fixed order: one split reads the leading keys,
        # and the per-key lookup answers if a kernel ever orders them differently.
        p = cpu.split(None, 6)
        if len(p) > 5 and p[2] == b"user_usec" and p[4] == b"system_usec":
            reading.cpu_user_seconds = float(p[3]) / US_PER_S
            reading.cpu_system_seconds = float(p[5]) / US_PER_S
        else:
            reading.cpu_user_seconds = keyed_value(cpu, b"user_usec ") / US_PER_S
            reading.cpu_system_seconds = keyed_value(cpu, b"system_usec ") / US_PER_S
        reading.mem_current_bytes = number_value(current)
        reading.mem_peak_bytes = number_value(peak)
        if stat is not None:
            p = stat.split(None, 4)
            if len(p) > 3 and p[0] == b"anon" and p[2] == b"file":
                reading.mem_anon_bytes, reading.mem_file_bytes = float(p[1]), float(p[3])
            else:
                reading.mem_anon_bytes = keyed_value(stat, b"anon ")
                reading.mem_file_bytes = keyed_value(stat, b"file ")
        if events is not None:
            p = events.split(None, 10)
            reading.oom_kills = (
                float(p[9]) if len(p) > 9 and p[8] == b"oom_kill" else keyed_value(events, b"oom_kill ")
            )
        reading.io_read_bytes, reading.io_write_bytes = parse_io(io)
        reading.pids = number_value(pids)
        if self._reads % STATIC_EVERY == 0:
            self._alloc = allocated_cpus(self.directory)
            self._limit = effective_limit(self.directory, self.top)
        self._reads += 1
        reading.alloc_cpus = self._alloc
        reading.mem_limit_bytes = self._limit
        return reading

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
