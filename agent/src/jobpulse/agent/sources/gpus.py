"""Which job each GPU belongs to, and the per-job GPU figures.

Rules, in order:

1. The job's start metadata (``gpus`` from the prolog: SLURM_JOB_GPUS /
   CUDA_VISIBLE_DEVICES, as NVML indices or UUIDs) resolved to GPU UUIDs through
   NVML. Never the /dev/nvidiaN minor number, which can differ from NVML's order.
2. Every few ticks, NVML's running compute processes mapped through
   ``/proc/<pid>/cgroup`` to jobs: a GPU no job claimed is given to the single
   job whose processes use it; a process of another job on a claimed GPU is
   logged (once per GPU and job) and its memory still counts for its own job.
3. Per job: utilization is the mean over its GPUs, power the sum, and memory the
   sum of its processes' GPU memory when a process list is known (else the
   devices' used memory).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from jobpulse.agent.sources.nvml import GpuProcess, GpuReading

log = logging.getLogger(__name__)


@dataclass(slots=True)
class JobGpu:
    """A job's GPU figures for one tick (the job row's gpu_* columns)."""

    util_percent: float = math.nan
    mem_bytes: float = math.nan
    power_watts: float = math.nan


@dataclass
class Attribution:
    """Keeps what the last process listing said between the ticks that list processes."""

    _by_process: dict[str, set[str]] = field(default_factory=dict)  # uuid -> jobs seen on it
    _process_mem: dict[str, float] = field(default_factory=dict)  # job -> summed process GPU memory
    _warned: set[tuple[str, str]] = field(default_factory=set)

    def update_processes(
        self, processes: Iterable[GpuProcess], job_of_pid: Callable[[int], str | None]
    ) -> None:
        """Fold in a fresh process listing (every ``process_every`` ticks)."""
        by_process: dict[str, set[str]] = defaultdict(set)
        memory: dict[str, float] = defaultdict(float)
        for proc in processes:
            job = job_of_pid(proc.pid)
            if job is None:
                continue
            by_process[proc.uuid].add(job)
            if not math.isnan(proc.used_bytes):
                memory[job] += proc.used_bytes
        self._by_process = dict(by_process)
        self._process_mem = dict(memory)

    def owners(self, claims: Mapping[str, Iterable[str]]) -> dict[str, str]:
        """GPU UUID -> job id, from the jobs' claims first, then the process listing."""
        owner: dict[str, str] = {}
        for job, uuids in claims.items():
            for uuid in uuids:
                if uuid in owner and owner[uuid] != job:
                    if self._first(uuid, job):
                        log.warning(
                            "GPU %s is claimed by jobs %s and %s; keeping the first", uuid, owner[uuid], job
                        )
                    continue
                owner.setdefault(uuid, job)
        for uuid, jobs in self._by_process.items():
            if uuid not in owner:
                if len(jobs) == 1:
                    owner[uuid] = next(iter(jobs))
                continue
            for job in sorted(jobs - {owner[uuid]}):
                if self._first(uuid, job):
                    log.warning(
                        "GPU %s belongs to job %s but job %s runs processes on it", uuid, owner[uuid], job
                    )
        return owner

    def _first(self, uuid: str, job: str) -> bool:
        """True the first time a (GPU, job) conflict is seen: a conflict is logged once, not every tick."""
        if (uuid, job) in self._warned:
            return False
        self._warned.add((uuid, job))
        return True

    def apply(self, readings: list[GpuReading], claims: Mapping[str, Iterable[str]]) -> dict[str, JobGpu]:
        """Set each GPU row's job and return the per-job figures."""
        owner = self.owners(claims)
        grouped: dict[str, list[GpuReading]] = defaultdict(list)
        for reading in readings:
            reading.job_id = owner.get(reading.uuid, "")
            if reading.job_id:
                grouped[reading.job_id].append(reading)
        result: dict[str, JobGpu] = {}
        for job, rows in grouped.items():
            figures = JobGpu()
            utils = [r.util_percent for r in rows if not math.isnan(r.util_percent)]
            if utils:
                figures.util_percent = sum(utils) / len(utils)
            powers = [r.power_watts for r in rows if not math.isnan(r.power_watts)]
            if powers:
                figures.power_watts = sum(powers)
            if job in self._process_mem:
                figures.mem_bytes = self._process_mem[job]
            else:
                used = [r.mem_used_bytes for r in rows if not math.isnan(r.mem_used_bytes)]
                if used:
                    figures.mem_bytes = sum(used)
            result[job] = figures
        for job, memory in self._process_mem.items():
            result.setdefault(job, JobGpu(mem_bytes=memory))
        return result
