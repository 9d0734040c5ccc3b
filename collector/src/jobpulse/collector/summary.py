"""Job summaries: what a finished job used of what it was given, per node and in total.

Computed once per job run after it stops (by the scheduled summary pass, services/summaries.py,
``summary_delay`` seconds later so the last batches of every node are in) from the figures the store
reads for it (store/summaries.py: the raw samples, or the 1-minute rollups once retention deleted
those). Plain functions of those figures, no I/O, so the rules can be read and tested on their own.
Stored as JSON in ``job_summaries``, which retention never touches. Values that were not measured are
None.

``metrics`` holds, per stored job metric, the mean and the highest value of its whole-job samples over
all nodes and, where the job was given a bound, that bound per node (``limit``: the CPUs of a node's
cpuset for ``cpu_cores``, the memory limit for memory, 100 for GPU utilisation). The job list's radar
chart is drawn from it (JobMon's ``JobMetadata.Data``), read for a page of jobs in one query.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from jobpulse.collector.findings import Finding, Thresholds, evaluate
from jobpulse.collector.store.base import RunFigures


@dataclass(frozen=True)
class GpuSummary:
    uuid: str
    node: str
    util_mean_percent: float | None
    util_max_percent: float | None
    mem_peak_bytes: float | None
    energy_joules: float | None


@dataclass(frozen=True)
class NodeSummary:
    node: str
    samples: int
    cpu_seconds: float | None
    alloc_cpus: float | None
    cpu_efficiency: float | None
    mem_peak_bytes: float | None
    mem_limit_bytes: float | None
    gpu_util_mean_percent: float | None
    gpu_util_max_percent: float | None
    gpu_mem_peak_bytes: float | None
    io_read_bytes: float | None
    io_write_bytes: float | None
    oom_kills: float | None


@dataclass(frozen=True)
class JobSummary:
    run_id: int
    job_id: int
    duration_s: float
    num_nodes: int
    cpu_seconds: float | None
    alloc_core_seconds: float | None
    cpu_efficiency: float | None
    cpu_hours: float | None
    gpus: int
    gpu_hours: float
    mem_peak_bytes: float | None  # the highest peak of any node
    mem_requested_bytes: float | None
    mem_limit_bytes: float | None
    gpu_util_mean_percent: float | None
    gpu_util_max_percent: float | None
    gpu_mem_peak_bytes: float | None
    energy_joules: float | None  # GPU energy counters; None where the GPUs do not measure it
    io_read_bytes: float | None
    io_write_bytes: float | None
    oom_kills: float | None
    source: str  # the table it was computed from
    gaps: tuple[dict[str, Any], ...] = ()
    nodes: tuple[NodeSummary, ...] = ()
    gpu_detail: tuple[GpuSummary, ...] = ()
    findings: tuple[Finding, ...] = field(default=())
    # per job metric: {"mean", "max", "limit"} (None where not measured or not bounded); see the module
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _max(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


_MEMORY_BOUNDED = ("mem_current_bytes", "mem_peak_bytes", "mem_anon_bytes", "mem_file_bytes")


def _limits(job: Any, nodes: list[NodeSummary], mem_limit: float | None) -> dict[str, float | None]:
    """What one node of the run was given, per metric that has such a bound."""
    num_nodes = max(1, len(nodes) or (job.num_nodes or 0))
    cpus = _max([n.alloc_cpus for n in nodes]) or (job.cpus / num_nodes if job.cpus else None)
    memory = mem_limit or (job.mem_requested_bytes / num_nodes if job.mem_requested_bytes else None)
    limits: dict[str, float | None] = {"cpu_cores": cpus, "gpu_util_percent": 100.0}
    limits.update(dict.fromkeys(_MEMORY_BOUNDED, memory))
    return limits


def compute_summary(figures: RunFigures) -> JobSummary:
    """The summary of a run (without findings) from its figures."""
    job = figures.run
    duration = max(0.0, float(figures.stop - figures.start))
    nodes: list[NodeSummary] = []
    for r in figures.nodes:
        alloc = r.alloc_cpus if r.alloc_cpus is not None else job.cpus
        eff = (
            r.cpu_seconds / (alloc * duration)
            if r.cpu_seconds is not None and alloc and duration > 0
            else None
        )
        nodes.append(
            NodeSummary(
                r.node,
                r.samples,
                r.cpu_seconds,
                alloc,
                eff,
                _max([r.mem_peak_bytes, r.mem_current_bytes]),
                r.mem_limit_bytes,
                r.gpu_util_mean_percent,
                r.gpu_util_max_percent,
                r.gpu_mem_bytes,
                r.io_read_bytes,
                r.io_write_bytes,
                r.oom_kills,
            )
        )
    node_names = figures.node_names
    gpu_detail = [GpuSummary(*g) for g in figures.gpus]
    num_nodes = len(node_names) or (job.num_nodes or 0)
    gpus = max(len(gpu_detail), (job.gpus_per_node or 0) * num_nodes)
    cpu_seconds = _sum([n.cpu_seconds for n in nodes])
    alloc_core_seconds = _sum([n.alloc_cpus * duration if n.alloc_cpus else None for n in nodes])
    util_means = [g.util_mean_percent for g in gpu_detail if g.util_mean_percent is not None]
    node_means = [n.gpu_util_mean_percent for n in nodes if n.gpu_util_mean_percent is not None]
    mem_limit = _max([n.mem_limit_bytes for n in nodes])
    limits = _limits(job, nodes, mem_limit)
    return JobSummary(
        run_id=job.run_id,
        job_id=job.job_id,
        duration_s=duration,
        num_nodes=num_nodes,
        cpu_seconds=cpu_seconds,
        alloc_core_seconds=alloc_core_seconds,
        cpu_efficiency=cpu_seconds / alloc_core_seconds
        if cpu_seconds is not None and alloc_core_seconds
        else None,
        cpu_hours=cpu_seconds / 3600 if cpu_seconds is not None else None,
        gpus=gpus,
        gpu_hours=gpus * duration / 3600,
        mem_peak_bytes=_max([n.mem_peak_bytes for n in nodes]),
        mem_requested_bytes=job.mem_requested_bytes,
        mem_limit_bytes=mem_limit,
        gpu_util_mean_percent=(
            sum(util_means) / len(util_means)
            if util_means
            else (sum(node_means) / len(node_means) if node_means else None)
        ),
        gpu_util_max_percent=_max(
            [g.util_max_percent for g in gpu_detail] + [n.gpu_util_max_percent for n in nodes]
        ),
        gpu_mem_peak_bytes=_max(
            [g.mem_peak_bytes for g in gpu_detail] + [n.gpu_mem_peak_bytes for n in nodes]
        ),
        energy_joules=_sum([g.energy_joules for g in gpu_detail]),
        io_read_bytes=_sum([n.io_read_bytes for n in nodes]),
        io_write_bytes=_sum([n.io_write_bytes for n in nodes]),
        oom_kills=_sum([n.oom_kills for n in nodes]),
        source=figures.source if figures.nodes else "",
        gaps=tuple(figures.gaps),
        nodes=tuple(nodes),
        gpu_detail=tuple(gpu_detail),
        metrics={
            c: {"mean": mean, "max": high, "limit": limits.get(c)}
            for c, (mean, high) in figures.metrics.items()
        },
    )


def build_summary(figures: RunFigures, thresholds: Thresholds) -> JobSummary:
    """The summary with its findings."""
    summary = compute_summary(figures)
    return replace(summary, findings=tuple(evaluate(summary, thresholds)))
