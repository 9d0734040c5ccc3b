"""One tick: discover jobs, read each one's counters, derive rates, produce a Batch."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from jobpulse.agent import discovery
from jobpulse.agent.sources import cgroup_v1, cgroup_v2
from jobpulse.agent.sources.base import JobReading, NoData
from jobpulse.agent.sources.node import NodeSource
from jobpulse.agent.sources.proctree import ProcTree
from jobpulse.agent.wire import encode_jobs
from jobpulse.common.timeutil import now_ms
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)


@dataclass
class _Previous:
    time_ms: int
    cpu_seconds: float
    peak: float


@dataclass
class Sampler:
    """Stateful across ticks: keeps the last reading of each job to turn counters into rates."""

    cgroup_root: Path
    node_source: NodeSource | None = None
    tracked: dict[str, ProcTree] = field(default_factory=dict)
    _previous: dict[tuple[str, str], _Previous] = field(default_factory=dict)

    def read_job(self, job: discovery.FoundJob) -> list[JobReading]:
        """The job's own reading first, then one per step. Raises NoData if the job is gone."""
        if job.v2 is not None:
            readings = [cgroup_v2.read_job(job.v2, job.job_id)]
            for step, path in job.steps.items():
                try:
                    readings.append(cgroup_v2.read_job(path, job.job_id, step))  # type: ignore[arg-type]
                except NoData:
                    continue
            return readings
        assert job.v1 is not None
        readings = [cgroup_v1.read_job(job.v1, job.job_id)]
        for step, paths in job.steps.items():
            try:
                readings.append(cgroup_v1.read_job(paths, job.job_id, step))  # type: ignore[arg-type]
            except NoData:
                continue
        return readings

    def collect(self, only: str | None = None) -> list[JobReading]:
        """Read every job (or just ``only``) now, with cpu_cores and a peak filled in."""
        found = discovery.discover(self.cgroup_root)
        readings: list[JobReading] = []
        for job_id, job in found.items():
            if only is not None and job_id != only:
                continue
            try:
                readings.extend(self.read_job(job))
            except NoData as exc:
                log.debug("job vanished while reading", extra={"job": job_id, "reason": str(exc)})
        for job_id, tree in list(self.tracked.items()):
            if job_id in found or (only is not None and job_id != only):
                continue
            try:
                readings.append(tree.read())
            except NoData:
                continue
        stamp = now_ms()
        for reading in readings:
            reading.time_ms = stamp
            self._derive(reading)
        return readings

    def _derive(self, reading: JobReading) -> None:
        key = (reading.job_id, reading.step)
        prev = self._previous.get(key)
        cpu = reading.cpu_seconds
        if prev is not None and reading.time_ms > prev.time_ms and cpu >= prev.cpu_seconds:
            reading.cpu_cores = (cpu - prev.cpu_seconds) / ((reading.time_ms - prev.time_ms) / 1000)
        peak = reading.mem_peak_bytes
        if math.isnan(peak):
            # Kernels before 5.19 have no memory.peak: keep the running maximum we saw.
            seen = max(prev.peak if prev else 0.0, reading.mem_current_bytes)
            reading.mem_peak_bytes = seen if not math.isnan(seen) else math.nan
        self._previous[key] = _Previous(reading.time_ms, cpu, reading.mem_peak_bytes)

    def forget(self, job_id: str) -> None:
        """Drop per-job state once a job has ended."""
        for key in [k for k in self._previous if k[0] == job_id]:
            del self._previous[key]
        self.tracked.pop(job_id, None)

    def tick(self) -> pb.Batch:
        """A batch (without seq) with every job and the node."""
        batch = pb.Batch()
        encode_jobs(self.collect(), batch.jobs)
        if self.node_source is not None:
            batch.node.append(self.node_source.sample())
        return batch
