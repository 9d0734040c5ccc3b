"""Shared shapes of the sources: a job's reading and the 'no data' signal."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

NAN = math.nan

Row = tuple[
    str,
    str,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
    float,
]
"""One job's (or step's) reading on the tick's hot path: (job_id, step, *the VALUE_FIELDS in order).

A plain tuple costs a fraction of a ``JobReading`` to build, and a tick's rows
transpose into protobuf columns with one ``zip``. The tick's time is the batch's.
"""


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


def row_of(reading: JobReading) -> Row:
    """The hot path's tuple for a reading made elsewhere (process trees, exec's rusage)."""
    r = reading
    return (
        r.job_id,
        r.step,
        r.cpu_user_seconds,
        r.cpu_system_seconds,
        r.cpu_cores,
        r.alloc_cpus,
        r.mem_current_bytes,
        r.mem_peak_bytes,
        r.mem_anon_bytes,
        r.mem_file_bytes,
        r.mem_limit_bytes,
        r.oom_kills,
        r.io_read_bytes,
        r.io_write_bytes,
        r.pids,
        r.gpu_util_percent,
        r.gpu_mem_bytes,
        r.gpu_power_watts,
    )


def reading_of(row: Row, time_ms: int) -> JobReading:
    """A row as a ``JobReading`` (for ``once``, the final sample of a job, tests)."""
    return JobReading(row[0], row[1], time_ms, *row[2:])


class Rates:
    """What one cgroup's rates need from its previous reading: cores used, and the peak on old kernels.

    Kept per reader (one object per cgroup for its whole life), so a tick
    creates no state and looks nothing up to derive them.
    """

    __slots__ = ("cpu", "peak", "time_ms")

    def __init__(self) -> None:
        self.time_ms = 0
        self.cpu = NAN
        self.peak = NAN

    def derive(self, stamp: int, cpu: float, current: float, peak: float) -> tuple[float, float]:
        """(cores used since the last reading, peak): NaN cores until two readings exist.

        Kernels before 5.19 have no memory.peak: the peak is then the running
        maximum of memory.current seen by the agent.
        """
        cores = NAN
        last = self.time_ms
        if last and stamp > last and cpu >= self.cpu:
            cores = (cpu - self.cpu) / ((stamp - last) / 1000)
        if peak != peak:  # NaN: no memory.peak
            seen = self.peak
            peak = seen if current != current or current <= seen else current  # NaNs compare False
        self.time_ms, self.cpu, self.peak = stamp, cpu, peak
        return cores, peak
