"""One tick: discover jobs, read each one's counters, derive rates, attribute GPUs, produce a Batch.

The sampler keeps one open reader per (job, step) cgroup between ticks (files
held open, re-read with pread) and closes it when the cgroup is no longer
listed or reads as gone. A job that ends between listing and reading is
normal: its rows are simply missing from that tick.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import resource
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from jobpulse.agent import discovery, jobmap, jobstate
from jobpulse.agent.settings import AgentSettings
from jobpulse.agent.sources.base import JobReading, NoData
from jobpulse.agent.sources.cgroup_v1 import V1Paths, V1Reader
from jobpulse.agent.sources.cgroup_v2 import V2Reader
from jobpulse.agent.sources.gpus import Attribution
from jobpulse.agent.sources.node import NodeSource
from jobpulse.agent.sources.nvml import GpuReading, NvmlSource
from jobpulse.agent.sources.proctree import ProcTree
from jobpulse.agent.wire import encode_gpus, encode_jobs
from jobpulse.common.timeutil import now_ms
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)

Reader = V1Reader | V2Reader


@dataclass
class _Previous:
    time_ms: int
    cpu_seconds: float
    peak: float


@dataclass
class Sampler:
    """Stateful across ticks: open readers, the last reading of each job (for rates), job metadata."""

    cgroup_root: Path
    node_source: NodeSource | None = None
    gpu_source: NvmlSource | None = None
    state_dir: Path | None = None
    proc_root: Path = Path("/proc")
    tracked: dict[str, ProcTree] = field(default_factory=dict)
    metas: dict[str, dict[str, Any]] = field(default_factory=dict)
    sluids: dict[str, str] = field(default_factory=dict)
    _previous: dict[tuple[str, str], _Previous] = field(default_factory=dict)
    _readers: dict[tuple[str, str], Reader] = field(default_factory=dict)
    _attribution: Attribution = field(default_factory=Attribution)
    _unmapped_logged: set[str] = field(default_factory=set)
    _walker: discovery.Walker = field(init=False)
    _last_unmapped: frozenset[str] = frozenset()
    _walks_since_reload: int = 0
    _fd_limit_logged: bool = False

    def __post_init__(self) -> None:
        self._walker = discovery.Walker(self.cgroup_root)
        self.reload_state()
        raise_fd_limit()

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
        for key in [k for k in self._previous if k[0] == job_id]:
            del self._previous[key]
        for key in [k for k in self._readers if k[0] == job_id]:
            self._readers.pop(key).close()
        self.tracked.pop(job_id, None)
        meta = self.metas.pop(job_id, None)
        if meta and meta.get("sluid"):
            self.sluids.pop(str(meta["sluid"]), None)

    # --- cgroups ---

    def discover(self, tasks: bool = False) -> dict[str, discovery.FoundJob]:
        found = self._walker.walk(self.sluids, tasks=tasks)
        unmapped = frozenset(k for k, job in found.items() if not job.mapped)
        self._walks_since_reload += 1
        if unmapped and (unmapped != self._last_unmapped or self._walks_since_reload >= 30):
            # A new SLUID directory: the prolog may have written its state file since the last look.
            self._last_unmapped, self._walks_since_reload = unmapped, 0
            self.reload_state()
            found = self._walker.walk(self.sluids, tasks=tasks)
        for key in [k for k, job in found.items() if not job.mapped]:
            if key not in self._unmapped_logged:
                self._unmapped_logged.add(key)
                log.warning("cgroup %s: no job id known for this SLUID yet (no prolog state); skipped", key)
            del found[key]
        return found

    def _open(self, job_id: str, step: str, where: Path | V1Paths, keep: bool = True) -> Reader:
        if isinstance(where, V1Paths):
            return V1Reader(where, job_id, step, keep=keep)
        return V2Reader(where, job_id, step, top=self.cgroup_root, keep=keep)

    def _read(self, key: tuple[str, str], where: Path | V1Paths) -> JobReading | None:
        reader = self._readers.get(key)
        try:
            if reader is None:
                try:
                    reader = self._readers[key] = self._open(key[0], key[1], where)
                except OSError as exc:
                    if exc.errno not in (errno.EMFILE, errno.ENFILE):
                        raise
                    if not self._fd_limit_logged:
                        self._fd_limit_logged = True
                        log.warning(
                            "out of file descriptors (%s): reading new cgroups without keeping them open", exc
                        )
                    return self._read_once(key, where)
            return reader.read()
        except NoData as exc:
            self._gone(key, exc)
            return None

    def _gone(self, key: tuple[str, str], exc: Exception) -> None:
        log.debug("job %s step %r vanished while reading: %s", key[0], key[1], exc)
        gone = self._readers.pop(key, None)
        if gone is not None:
            gone.close()
        self._walker.invalidate(key[0])  # list its steps again next tick

    def _read_once(self, key: tuple[str, str], where: Path | V1Paths) -> JobReading | None:
        """Open, read, close: the slow path when no descriptor can be kept."""
        reader = None
        try:
            reader = self._open(key[0], key[1], where, keep=False)
            return reader.read()
        except (NoData, OSError):
            return None
        finally:
            if reader is not None:
                reader.close()

    def collect(self, only: str | None = None) -> list[JobReading]:
        """Read every job (or just ``only``) now, with cpu_cores and a peak filled in."""
        found = self.discover()
        readings: list[JobReading] = []
        listed: set[tuple[str, str]] = set()
        readers = self._readers
        for job_id, job in found.items():
            if only is not None and job_id != only:
                continue
            keys = job.read_keys
            if not keys:  # built once per listing of the job (the walker reuses unchanged jobs)
                where = job.v2 if job.v2 is not None else job.v1
                assert where is not None
                keys.append(((job_id, ""), where))
                keys += [((job_id, step), step_where) for step, step_where in job.steps.items()]
            for key, key_where in keys:
                listed.add(key)
                reader = readers.get(key)
                if reader is not None:  # the hot path: files already open
                    try:
                        readings.append(reader.read())
                        continue
                    except NoData as exc:
                        self._gone(key, exc)
                        reading = None
                else:
                    reading = self._read(key, key_where)
                    if reading is not None:
                        readings.append(reading)
                if reading is None and key[1] == "":
                    break  # the job ended between listing and reading: skip its steps
        for key in [k for k in self._readers if k not in listed and (only is None or k[0] == only)]:
            # Gone from the tree (the job or step ended): close its files, forget its last reading.
            self._readers.pop(key).close()
            self._previous.pop(key, None)
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
        if math.isnan(reading.mem_peak_bytes):
            # Kernels before 5.19 have no memory.peak: keep the running maximum we saw.
            seen = [
                v for v in (prev.peak if prev else math.nan, reading.mem_current_bytes) if not math.isnan(v)
            ]
            reading.mem_peak_bytes = max(seen) if seen else math.nan
        if prev is None:
            self._previous[key] = _Previous(reading.time_ms, cpu, reading.mem_peak_bytes)
        else:
            prev.time_ms, prev.cpu_seconds, prev.peak = reading.time_ms, cpu, reading.mem_peak_bytes

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    # --- GPUs ---

    def gpu_claims(self, job_ids: Iterable[str]) -> dict[str, list[str]]:
        """Job -> GPU UUIDs from the start metadata, indices resolved through NVML."""
        assert self.gpu_source is not None
        claims: dict[str, list[str]] = {}
        for job_id in job_ids:
            refs = self.metas.get(job_id, {}).get("gpus") or []
            if isinstance(refs, str):
                refs = [r for r in refs.split(",") if r]
            uuids = [u for u in (self.gpu_source.resolve(str(r)) for r in refs) if u]
            if uuids:
                claims[job_id] = uuids
        return claims

    def sample_gpus(self, readings: list[JobReading]) -> list[GpuReading]:
        """GPU rows now, with each job's whole-job row given its GPU figures."""
        if self.gpu_source is None or not self.gpu_source.available:
            return []
        gpus = self.gpu_source.sample()
        if self.gpu_source.processes_fresh and self.gpu_source.processes is not None:
            job_of = partial(jobmap.job_of_pid, proc_root=self.proc_root, sluids=self.sluids)
            self._attribution.update_processes(self.gpu_source.processes, job_of)
        job_ids = {r.job_id for r in readings} | set(self.metas)
        per_job = self._attribution.apply(gpus, self.gpu_claims(job_ids))
        for reading in readings:
            figures = per_job.get(reading.job_id)
            if figures is not None and reading.step == "":
                reading.gpu_util_percent = figures.util_percent
                reading.gpu_mem_bytes = figures.mem_bytes
                reading.gpu_power_watts = figures.power_watts
        return gpus

    def tick(self) -> pb.Batch:
        """A batch (without seq) with every job, the GPUs and the node."""
        batch = pb.Batch()
        readings = self.collect()
        encode_gpus(self.sample_gpus(readings), batch.gpus)
        encode_jobs(readings, batch.jobs)
        if self.node_source is not None:
            batch.node.append(self.node_source.sample())
        return batch


def raise_fd_limit() -> None:
    """Each job and step keeps ~8 files open: lift the soft descriptor limit (often 1024) to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def gpu_source(settings: AgentSettings) -> NvmlSource | None:
    """NVML, started once, or None when the node has none (or the admin turned GPUs off)."""
    if not settings.gpus:
        return None
    source = NvmlSource(settings.gpu_process_every, settings.gpu_energy_every)
    return source if source.start() else None
