"""One tick: discover jobs, read each one's counters into rows, attribute GPUs, produce a Batch.

The pieces: ``discovery.Walker`` lists the job and step cgroups (cheaply: it
remembers the tree between ticks), ``readers.Readers`` keeps every cgroup's
files open and turns them into rows with their rates, ``jobgpus.JobGpus``
adds the GPUs, ``wire`` encodes the columns and the node sample (the sources return
plain values, never protobuf). ``collect`` gives the same rows
as ``JobReading`` objects for ``once``, the final sample of a job, and tests.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from jobpulse.agent import discovery, jobstate
from jobpulse.agent.jobend_v2 import V2EndWatch
from jobpulse.agent.jobgpus import JobGpus, apply_to_readings, apply_to_rows
from jobpulse.agent.oomwatch import OomWatch
from jobpulse.agent.readers import Key, Reader, Readers, raise_fd_limit
from jobpulse.agent.settings import AgentSettings
from jobpulse.agent.sources.base import VALUE_FIELDS, JobReading, NoData, Rates, Row, reading_of, row_of
from jobpulse.agent.sources.node import NodeSource
from jobpulse.agent.sources.nvml import GpuReading, NvmlSource
from jobpulse.agent.sources.proctree import ProcTree
from jobpulse.agent.wire import encode_gpus, encode_node, encode_rows
from jobpulse.common.timeutil import now_ms
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)

OOM_KILLS = 2 + VALUE_FIELDS.index("oom_kills")  # a Row is (job_id, step, *VALUE_FIELDS)


@dataclass
class Sampler:
    """Stateful across ticks: the walker's memory, open readers, job metadata."""

    cgroup_root: Path
    node_source: NodeSource | None = None
    gpu_source: NvmlSource | None = None
    state_dir: Path | None = None
    proc_root: Path = Path("/proc")
    node: str = ""  # the agent's node name: where several slurmd share a host, only its own root is read
    tracked: dict[str, ProcTree] = field(default_factory=dict)
    metas: dict[str, dict[str, Any]] = field(default_factory=dict)
    sluids: dict[str, str] = field(default_factory=dict)
    _tracked_rates: dict[str, Rates] = field(default_factory=dict)
    _unmapped_logged: set[str] = field(default_factory=set)
    _walker: discovery.Walker = field(init=False)
    _pool: Readers = field(init=False)
    _gpus: JobGpus | None = field(init=False, default=None)
    _last_unmapped: frozenset[str] = frozenset()
    _walks_since_reload: int = 0
    # (the walker's answer, it without the unmapped SLUIDs): see _drop_unmapped
    _filtered: tuple[object, dict[str, discovery.FoundJob]] = (None, {})
    # cgroup v1 OOM kills, caught in the task cgroups as they happen (oomwatch.py); made at the first v1 job
    _oom: OomWatch | None = None
    # cgroup v2 jobs' final counters, read as their steps go (jobend_v2.py); made at the first v2 walk
    _ends_v2: V2EndWatch | None = None
    _oom_listing: object = None  # the listing whose v1 jobs are all registered

    def __post_init__(self) -> None:
        self._walker = discovery.Walker(self.cgroup_root, self.node)
        self._pool = Readers(self.cgroup_root)
        if self.gpu_source is not None:
            self._gpus = JobGpus(self.gpu_source, self.proc_root)
        self.reload_state()
        raise_fd_limit()

    @property
    def _readers(self) -> dict[Key, Reader]:
        """(job, step) -> its open reader (which also holds its state for rates)."""
        return self._pool.open

    # --- job metadata (prolog state files and start events) ---

    def reload_state(self) -> None:
        """Read the prolog's per-job state files: SLUIDs and GPUs survive an agent restart."""
        if self.state_dir is None:
            return
        for job_id, meta in jobstate.load_all(self.state_dir).items():
            self.job_started({"job_id": job_id, **meta})

    def job_started(self, meta: dict[str, Any]) -> None:
        """Remember a job's start metadata (its GPUs, its SLUID)."""
        job_id = str(meta.get("job_id", ""))
        if not job_id:
            return
        self.metas[job_id] = meta
        sluid = meta.get("sluid")
        if sluid:
            self.sluids[str(sluid)] = job_id

    def forget(self, job_id: str) -> None:
        """Drop per-job state once a job has ended."""
        if self._oom is not None:
            self._oom.forget(job_id)
        if self._ends_v2 is not None:
            self._ends_v2.forget(job_id)
        self._pool.forget(job_id)
        self.tracked.pop(job_id, None)
        self._tracked_rates.pop(job_id, None)
        meta = self.metas.pop(job_id, None)
        if meta and meta.get("sluid"):
            self.sluids.pop(str(meta["sluid"]), None)

    # --- cgroups ---

    def discover(self, tasks: bool = False) -> dict[str, discovery.FoundJob]:
        found = self._walker.walk(self.sluids, tasks=tasks)
        if tasks or self._walker.unmapped:
            found = self._drop_unmapped(found, tasks)
        return found

    def _drop_unmapped(
        self, found: dict[str, discovery.FoundJob], tasks: bool
    ) -> dict[str, discovery.FoundJob]:
        """SLUID directories with no job id yet: look for the prolog's state file, else skip them."""
        unmapped = frozenset(k for k, job in found.items() if not job.mapped)
        self._walks_since_reload += 1
        if unmapped and (unmapped != self._last_unmapped or self._walks_since_reload >= 30):
            # A new SLUID directory: the prolog may have written its state file since the last look.
            self._last_unmapped, self._walks_since_reload = unmapped, 0
            self.reload_state()
            found = self._walker.walk(self.sluids, tasks=tasks)
        elif not tasks and found is self._filtered[0]:
            # The walker's answer did not change: the same filtered dict, so that the readers'
            # fast path (which keys on the listing's identity) stays on while a SLUID waits.
            return self._filtered[1]
        walked = found
        found = dict(found)
        for key in [k for k, job in found.items() if not job.mapped]:
            if key not in self._unmapped_logged:
                self._unmapped_logged.add(key)
                log.warning("cgroup %s: no job id known for this SLUID yet (no prolog state); skipped", key)
            del found[key]
        if not tasks:
            self._filtered = (walked, found)
        return found

    def rows(self, only: str | None = None) -> tuple[int, list[Row]]:
        """(time, a row per job and step now): the tick's hot path, with cores used and a peak filled in."""
        found = self.discover()
        stamp = now_ms()
        rows, vanished = self._pool.rows(found, stamp, only)
        for job_id in vanished:
            self._walker.invalidate(job_id)  # list its steps again next tick
        if self.tracked:
            rows += self._tracked_rows(found, stamp, only)
        if found is not self._oom_listing:
            self._watch_oom(found)
        if self._oom is not None and self._oom.finals:
            # jobs whose steps went since the last tick: their counters read as they went (oomwatch.py)
            rows += [row_of(reading) for reading in self._oom.take_finals(only)]
        if self._ends_v2 is not None and self._ends_v2.finals:
            rows += [row_of(reading) for reading in self._ends_v2.take_finals(only)]
        if self._oom is not None and self._oom.counted:
            rows = self._with_oom_kills(rows)
        return stamp, rows

    def _watch_oom(self, found: dict[str, discovery.FoundJob]) -> None:
        """Register every v1 job not yet watched for OOM notifications (once per new listing), and
        watch the directories new jobs are made in, so that a job is registered as soon as it appears."""
        if self._walker.unified:
            self._watch_ends_v2(found)
            return
        if self._oom is None:
            try:
                self._oom = OomWatch()
            except OSError as exc:  # out of descriptors: tried again at the next new listing
                log.warning("no OOM watch yet: %s", exc)
                return
        if self._oom is None:
            return
        memory = os.path.join(self.cgroup_root, "memory")
        parents = self._walker.v1_parents()
        tops = {os.path.dirname(parent) for parent in parents} | {
            "slurm",
            f"slurm_{self.node}" if self.node else "slurm",
        }
        for top in tops:  # one that is not there (yet) is tried again at the next new listing
            self._oom.watch_parent(os.path.join(memory, top), uids=True)
        for parent in parents:
            self._oom.watch_parent(os.path.join(memory, parent))
        for job_id, job in found.items():
            if job.v1 is not None and not self._oom.watching(job_id):
                self._oom.watch(job_id, str(job.v1.ctrl("memory")))
        self._oom_listing = found

    def _watch_ends_v2(self, found: dict[str, discovery.FoundJob]) -> None:
        """Watch every v2 job's directory for its steps' removal, and the directories jobs are made in
        (v2 OOM kills need no watch: ``memory.events`` counts them hierarchically)."""
        if self._ends_v2 is None:
            self._ends_v2 = V2EndWatch()
        for parent in self._walker.v2_parents():
            self._ends_v2.watch_parent(parent)
        for job_id, job in found.items():
            if job.v2 is not None and not self._ends_v2.watching(job_id):
                self._ends_v2.watch(job_id, str(job.v2))
        self._oom_listing = found

    def _with_oom_kills(self, rows: list[Row]) -> list[Row]:
        """The rows, with the OOM kills counted in their task cgroups where those say more."""
        assert self._oom is not None
        out: list[Row] = []
        for row in rows:
            kills = self._oom.kills(row[0]).get(row[1])
            if kills and not kills <= cast(float, row[OOM_KILLS]):  # NaN (not measured) too
                patched = list(row)
                patched[OOM_KILLS] = float(kills)
                row = cast(Row, tuple(patched))
            out.append(row)
        return out

    def final_oom_kills(self, job_id: str) -> float | None:
        """The job's OOM kills as counted in its task cgroups (for its final sample), or None."""
        kills = self._oom.kills(job_id).get("") if self._oom is not None else None
        return float(kills) if kills else None

    def _tracked_rows(self, found: dict[str, discovery.FoundJob], stamp: int, only: str | None) -> list[Row]:
        """exec jobs without a cgroup of their own, read through their process tree."""
        rows: list[Row] = []
        for job_id, tree in list(self.tracked.items()):
            if job_id in found or (only is not None and job_id != only):
                continue
            try:
                reading = tree.read()
            except NoData:
                continue
            rates = self._tracked_rates.setdefault(job_id, Rates())
            cpu = reading.cpu_seconds
            reading.cpu_cores, reading.mem_peak_bytes = rates.derive(
                stamp, cpu, reading.mem_current_bytes, reading.mem_peak_bytes
            )
            rows.append(row_of(reading))
        return rows

    def collect(self, only: str | None = None) -> list[JobReading]:
        """Every job (or just ``only``) now, as readings."""
        stamp, rows = self.rows(only)
        return [reading_of(row, stamp) for row in rows]

    def close(self) -> None:
        if self._oom is not None:
            self._oom.close()
        if self._ends_v2 is not None:
            self._ends_v2.close()
        self._pool.close()
        self._walker.close()

    # --- GPUs ---

    def sample_gpus(self, readings: list[JobReading]) -> list[GpuReading]:
        """GPU rows now, with each job's whole-job reading given its GPU figures."""
        if self._gpus is None:
            return []
        gpus, per_job = self._gpus.sample((r.job_id for r in readings), self.metas, self.sluids)
        apply_to_readings(readings, per_job)
        return gpus

    def tick(self) -> pb.Batch:
        """A batch (without seq) with every job, the GPUs and the node."""
        batch = pb.Batch()
        stamp, rows = self.rows()
        if self._gpus is not None:
            gpus, per_job = self._gpus.sample((row[0] for row in rows), self.metas, self.sluids)
            apply_to_rows(rows, per_job)
            encode_gpus(gpus, batch.gpus)
        encode_rows(rows, stamp, batch.jobs)
        if self.node_source is not None:
            encode_node(self.node_source.sample(), batch.node.add())
        return batch


def gpu_source(settings: AgentSettings) -> NvmlSource | None:
    """NVML, started once, or None when the node has none (or the admin turned GPUs off)."""
    if not settings.gpus:
        return None
    source = NvmlSource(settings.gpu_process_every, settings.gpu_energy_every)
    return source if source.start() else None
