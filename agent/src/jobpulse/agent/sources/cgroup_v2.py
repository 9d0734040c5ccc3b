"""cgroup v2 reader for one job (or step) directory of the unified hierarchy."""

from __future__ import annotations

import math
from pathlib import Path

from jobpulse.agent.sources.base import JobReading, NoData
from jobpulse.agent.sources.cgroupfs import count_cpus, read_keyed, read_number, read_text
from jobpulse.common.units import US_PER_S


def read_io(path: Path) -> tuple[float, float]:
    """Sum rbytes/wbytes over devices of io.stat; NaN if the io controller is not enabled."""
    text = read_text(path)
    if text is None:
        return math.nan, math.nan
    rbytes = wbytes = 0.0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key == "rbytes":
                rbytes += float(value)
            elif key == "wbytes":
                wbytes += float(value)
    return rbytes, wbytes


def read_job(directory: Path, job_id: str, step: str = "") -> JobReading:
    """Read one v2 cgroup directory.

    Raises:
        NoData: the directory is gone (the job ended between listing and reading).
    """
    cpu = read_keyed(directory / "cpu.stat")
    if cpu is None:
        raise NoData(f"cgroup {directory} vanished")
    reading = JobReading(job_id=job_id, step=step)
    reading.cpu_user_seconds = cpu.get("user_usec", math.nan) / US_PER_S
    reading.cpu_system_seconds = cpu.get("system_usec", math.nan) / US_PER_S
    reading.alloc_cpus = count_cpus(read_text(directory / "cpuset.cpus.effective"))
    reading.mem_current_bytes = read_number(directory / "memory.current")
    reading.mem_peak_bytes = read_number(directory / "memory.peak")
    stat = read_keyed(directory / "memory.stat")
    if stat is not None:
        reading.mem_anon_bytes = stat.get("anon", math.nan)
        reading.mem_file_bytes = stat.get("file", math.nan)
    reading.mem_limit_bytes = read_number(directory / "memory.max")
    events = read_keyed(directory / "memory.events")
    if events is not None:
        reading.oom_kills = events.get("oom_kill", math.nan)
    reading.io_read_bytes, reading.io_write_bytes = read_io(directory / "io.stat")
    reading.pids = read_number(directory / "pids.current")
    return reading
