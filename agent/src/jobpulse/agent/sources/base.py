"""Shared shapes of the sources: a job's reading and the 'no data' signal."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

NAN = math.nan


class NoData(Exception):
    """Nothing to measure right now (no GPU, the job's cgroup is gone). Not an error."""


@dataclass(slots=True)
class JobReading:
    """One job's (or step's) counters at one instant. NaN = not measured, never 0."""

    job_id: str
    step: str = ""
    time_ms: int = 0
    cpu_user_seconds: float = NAN
    cpu_system_seconds: float = NAN
    cpu_cores: float = NAN
    alloc_cpus: float = NAN
    mem_current_bytes: float = NAN
    mem_peak_bytes: float = NAN
    mem_anon_bytes: float = NAN
    mem_file_bytes: float = NAN
    mem_limit_bytes: float = NAN
    oom_kills: float = NAN
    io_read_bytes: float = NAN
    io_write_bytes: float = NAN
    pids: float = NAN
    gpu_util_percent: float = NAN
    gpu_mem_bytes: float = NAN
    gpu_power_watts: float = NAN
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_user_seconds + self.cpu_system_seconds

    @property
    def cpu_efficiency(self) -> float:
        """Cores used / CPUs allocated (0..1); NaN until two samples exist or when the cpuset is unknown."""
        if not self.alloc_cpus or math.isnan(self.alloc_cpus):
            return NAN
        return self.cpu_cores / self.alloc_cpus


VALUE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(JobReading) if f.name not in ("job_id", "step", "time_ms", "extra")
)
