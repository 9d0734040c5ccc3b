"""cgroup v1 reader: one job's directories across the cpuacct, memory, cpuset, blkio and pids hierarchies.

Like the v2 reader, ``V1Reader`` holds the files open between ticks; a
controller Slurm does not use on this node (often blkio and pids) is "not
measured", never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
from jobpulse.common.units import NS_PER_S

# The kernel reports "no limit" in v1 as the largest page-aligned signed 64-bit value.
V1_UNLIMITED = 9223372036854771712
STATIC_EVERY = 30


@dataclass(frozen=True)
class V1Paths:
    """The same job's directory under each controller; the relative part is identical."""

    root: Path
    relative: str  # e.g. slurm_node1/uid_0/job_88

    def ctrl(self, controller: str) -> Path:
        return self.root / controller / self.relative


def parse_blkio(data: bytes | None) -> tuple[float, float]:
    """Read/Write byte totals from blkio.throttle.io_service_bytes ('MAJ:MIN Read N' lines)."""
    if data is None:
        return math.nan, math.nan
    read = write = 0.0
    for line in data.split(b"\n"):
        parts = line.split()
        if len(parts) == 3 and parts[1] == b"Read":
            read += float(parts[2])
        elif len(parts) == 3 and parts[1] == b"Write":
            write += float(parts[2])
    return read, write


def effective_limit(paths: V1Paths) -> float:
    """The tightest memory.limit_in_bytes of the cgroup and its ancestors; +inf if none is set."""
    memory_root = paths.root / "memory"
    directory = paths.ctrl("memory")
    own = read_number(directory / "memory.limit_in_bytes")
    if math.isnan(own):
        return math.nan
    limit = own
    while directory != memory_root and directory.parent != memory_root:
        directory = directory.parent
        value = read_number(directory / "memory.limit_in_bytes")
        if math.isnan(value):
            break
        limit = min(limit, value)
    return math.inf if limit >= V1_UNLIMITED else limit


def allocated_cpus(paths: V1Paths) -> float:
    cpus = read_text(paths.ctrl("cpuset") / "cpuset.effective_cpus")
    if cpus is None:
        cpus = read_text(paths.ctrl("cpuset") / "cpuset.cpus")
    return count_cpus(cpus)


class V1Reader:
    """One job (or step) across the v1 hierarchies, files held open between ticks."""

    def __init__(self, paths: V1Paths, job_id: str, step: str = "", keep: bool = True) -> None:
        self.paths = paths
        self.job_id = job_id
        self.step = step
        cpuacct, memory = paths.ctrl("cpuacct"), paths.ctrl("memory")
        self.files = FileSet(
            {
                "usage": cpuacct / "cpuacct.usage",
                "ticks": cpuacct / "cpuacct.stat",
                "current": memory / "memory.usage_in_bytes",
                "peak": memory / "memory.max_usage_in_bytes",
                "stat": memory / "memory.stat",
                "oom": memory / "memory.oom_control",
                "blkio": paths.ctrl("blkio") / "blkio.throttle.io_service_bytes",
                "pids": paths.ctrl("pids") / "pids.current",
            },
            keep,
        )
        if keep and "usage" not in self.files.fds and "current" not in self.files.fds:
            self.files.close()
            raise NoData(f"cgroup {paths.relative} vanished")
        self._reads = 0
        self._alloc = math.nan
        self._limit = math.nan

    def read(self) -> JobReading:
        """cpuacct.stat is in USER_HZ ticks (coarse) while cpuacct.usage is exact in
        nanoseconds, so the total comes from cpuacct.usage and is split into
        user/system by the ticks' proportion.

        Raises:
            NoData: the job's cgroup is gone.
        """
        try:
            usage_b, ticks, current, peak, stat, oom, blkio, pids = self.files.read_all()
        except CgroupGone as exc:
            raise NoData(f"cgroup {self.paths.relative} vanished: {exc}") from exc
        if usage_b is None and current is None:
            raise NoData(f"cgroup {self.paths.relative} vanished")
        reading = JobReading(self.job_id, self.step)
        usage = number_value(usage_b)
        if usage == usage:  # not NaN
            parts = ticks.split() if ticks else []  # b"user 305\nsystem 42\n"
            user_t = float(parts[1]) if len(parts) >= 4 and parts[0] == b"user" else 0.0
            sys_t = float(parts[3]) if len(parts) >= 4 and parts[2] == b"system" else 0.0
            share = user_t / (user_t + sys_t) if user_t + sys_t > 0 else 1.0
            total = usage / NS_PER_S
            reading.cpu_user_seconds = total * share
            reading.cpu_system_seconds = total - reading.cpu_user_seconds
        reading.mem_current_bytes = number_value(current)
        reading.mem_peak_bytes = number_value(peak)
        anon = keyed_value(stat, b"total_rss ")
        reading.mem_anon_bytes = anon if anon == anon else keyed_value(stat, b"rss ")
        cache = keyed_value(stat, b"total_cache ")
        reading.mem_file_bytes = cache if cache == cache else keyed_value(stat, b"cache ")
        reading.oom_kills = keyed_value(oom, b"oom_kill ")
        reading.io_read_bytes, reading.io_write_bytes = parse_blkio(blkio)
        reading.pids = number_value(pids)
        if self._reads % STATIC_EVERY == 0:
            self._alloc = allocated_cpus(self.paths)
            self._limit = effective_limit(self.paths)
        self._reads += 1
        reading.alloc_cpus = self._alloc
        reading.mem_limit_bytes = self._limit
        return reading

    def close(self) -> None:
        self.files.close()


def read_job(paths: V1Paths, job_id: str, step: str = "") -> JobReading:
    """Read one job (or step) once. Raises NoData if its cgroup is gone."""
    reader = V1Reader(paths, job_id, step)
    try:
        return reader.read()
    finally:
        reader.close()
