"""Each tick's GPU rows, and the GPU figures they give each job's whole-job row.

The rules of attribution are in ``sources/gpus.py``; this module feeds them
the jobs' claims (the prolog's GPU list resolved through NVML) and NVML's
process list mapped to jobs through ``/proc``, then writes the figures into
the job rows: only the whole-job row carries them, never a step's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from jobpulse.agent import jobmap
from jobpulse.agent.sources.base import JobReading, Row
from jobpulse.agent.sources.gpus import Attribution, JobGpu
from jobpulse.agent.sources.nvml import GpuReading, NvmlSource


class JobGpus:
    """NVML sampling plus what attribution remembers between the ticks that list processes."""

    def __init__(self, source: NvmlSource, proc_root: Path) -> None:
        self.source = source
        self.proc_root = proc_root
        self._attribution = Attribution()

    def claims(self, job_ids: Iterable[str], metas: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
        """Job -> GPU UUIDs from the start metadata, indices resolved through NVML."""
        claims: dict[str, list[str]] = {}
        for job_id in job_ids:
            refs = metas.get(job_id, {}).get("gpus") or []
            if isinstance(refs, str):
                refs = [r for r in refs.split(",") if r]
            uuids = [u for u in (self.source.resolve(str(r)) for r in refs) if u]
            if uuids:
                claims[job_id] = uuids
        return claims

    def sample(
        self, job_ids: Iterable[str], metas: Mapping[str, Mapping[str, Any]], sluids: Mapping[str, str]
    ) -> tuple[list[GpuReading], dict[str, JobGpu]]:
        """The GPU rows now (each with its job) and the per-job figures."""
        if not self.source.available:
            return [], {}
        gpus = self.source.sample()
        if self.source.processes_fresh and self.source.processes is not None:
            job_of = partial(jobmap.job_of_pid, proc_root=self.proc_root, sluids=sluids)
            self._attribution.update_processes(self.source.processes, job_of)
        per_job = self._attribution.apply(gpus, self.claims(set(job_ids) | set(metas), metas))
        return gpus, per_job


def apply_to_rows(rows: list[Row], per_job: Mapping[str, JobGpu]) -> None:
    """Give each job's whole-job row its GPU figures (rows are tuples: replaced in place)."""
    if not per_job:
        return
    for index, row in enumerate(rows):
        figures = per_job.get(row[0])
        if figures is not None and not row[1]:
            rows[index] = (*row[:15], figures.util_percent, figures.mem_bytes, figures.power_watts)


def apply_to_readings(readings: Iterable[JobReading], per_job: Mapping[str, JobGpu]) -> None:
    """The same for ``JobReading`` objects (``once``)."""
    for reading in readings:
        figures = per_job.get(reading.job_id)
        if figures is not None and reading.step == "":
            reading.gpu_util_percent = figures.util_percent
            reading.gpu_mem_bytes = figures.mem_bytes
            reading.gpu_power_watts = figures.power_watts
