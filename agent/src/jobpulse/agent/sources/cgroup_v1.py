"""cgroup v1 reader: one job's directories across the cpuacct, memory, cpuset, blkio and pids hierarchies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from jobpulse.agent.sources.base import JobReading, NoData
from jobpulse.agent.sources.cgroupfs import count_cpus, read_keyed, read_number, read_text
from jobpulse.common.units import NS_PER_S

# The kernel reports "no limit" in v1 as the largest page-aligned signed 64-bit value.
V1_UNLIMITED = 9223372036854771712


@dataclass(frozen=True)
class V1Paths:
    """The same job's directory under each controller; the relative part is identical."""

    root: Path
    relative: str  # e.g. slurm_node1/uid_0/job_88

    def ctrl(self, controller: str) -> Path:
        return self.root / controller / self.relative


def read_blkio(path: Path) -> tuple[float, float]:
    """Read/Write byte totals from blkio.throttle.io_service_bytes ('MAJ:MIN Read N' lines)."""
    text = read_text(path)
    if text is None:
        return math.nan, math.nan
    read = write = 0.0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read += float(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write += float(parts[2])
    return read, write


def read_job(paths: V1Paths, job_id: str, step: str = "") -> JobReading:
    """Read one job (or step) across the v1 hierarchies.

    cpuacct.stat is in USER_HZ ticks (coarse) while cpuacct.usage is exact in
    nanoseconds, so the total comes from cpuacct.usage and is split into
    user/system by the ticks' proportion.

    Raises:
        NoData: the job's cpuacct directory is gone.
    """
    cpuacct = paths.ctrl("cpuacct")
    usage_ns = read_number(cpuacct / "cpuacct.usage")
    ticks = read_keyed(cpuacct / "cpuacct.stat")
    if ticks is None or math.isnan(usage_ns):
        raise NoData(f"cgroup {cpuacct} vanished")
    reading = JobReading(job_id=job_id, step=step)
    total = usage_ns / NS_PER_S
    user_t, sys_t = ticks.get("user", 0.0), ticks.get("system", 0.0)
    user_share = user_t / (user_t + sys_t) if user_t + sys_t > 0 else 1.0
    reading.cpu_user_seconds = total * user_share
    reading.cpu_system_seconds = total - reading.cpu_user_seconds
    cpus = read_text(paths.ctrl("cpuset") / "cpuset.effective_cpus")
    if cpus is None:
        cpus = read_text(paths.ctrl("cpuset") / "cpuset.cpus")
    reading.alloc_cpus = count_cpus(cpus)
    memory = paths.ctrl("memory")
    reading.mem_current_bytes = read_number(memory / "memory.usage_in_bytes")
    reading.mem_peak_bytes = read_number(memory / "memory.max_usage_in_bytes")
    stat = read_keyed(memory / "memory.stat")
    if stat is not None:
        reading.mem_anon_bytes = stat.get("total_rss", stat.get("rss", math.nan))
        reading.mem_file_bytes = stat.get("total_cache", stat.get("cache", math.nan))
    limit = read_number(memory / "memory.limit_in_bytes")
    reading.mem_limit_bytes = math.inf if limit >= V1_UNLIMITED else limit
    oom = read_keyed(memory / "memory.oom_control")
    if oom is not None:
        reading.oom_kills = oom.get("oom_kill", math.nan)
    reading.io_read_bytes, reading.io_write_bytes = read_blkio(
        paths.ctrl("blkio") / "blkio.throttle.io_service_bytes"
    )
    reading.pids = read_number(paths.ctrl("pids") / "pids.current")
    return reading
