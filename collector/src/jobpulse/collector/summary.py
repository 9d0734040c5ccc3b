"""Job summaries: what a finished job used of what it was given, per node and in total.

Computed once per job run after it stops (by the scheduled summary pass, ``summary_delay`` seconds
later so the last batches of every node are in) from the raw samples, which retention keeps longer
than any job runs; a job whose raw samples are gone is summarized from its 1-minute rollups. Stored
as JSON in ``job_summaries``, which retention never touches. Values that were not measured are None.

``metrics`` holds, per stored job metric, the mean and the highest value of its whole-job samples over
all nodes and, where the job was given a bound, that bound per node (``limit``: the CPUs of a node's
cpuset for ``cpu_cores``, the memory limit for memory, 100 for GPU utilisation). The job list's radar
chart is drawn from it (JobMon's ``JobMetadata.Data``), read for a page of jobs in one query.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import asdict, dataclass, field, replace
from operator import add
from typing import Any

from jobpulse.collector.findings import FINDING_CREATED_BY, FINDING_TAG_TYPE, Finding, Thresholds, evaluate
from jobpulse.collector.store.migrations import COUNTER_COLUMNS, JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.packed import Hour, read_hours, selection
from jobpulse.collector.store.packing import aggregate
from jobpulse.collector.store.state import get_state, set_state
from jobpulse.collector.store.tags import add_tag


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


_RAW_SQL = """SELECT node, count(*), max(coalesce(cpu_user_seconds, 0) + coalesce(cpu_system_seconds, 0))
        * (CASE WHEN count(cpu_user_seconds) + count(cpu_system_seconds) > 0 THEN 1 END), max(alloc_cpus),
        max(mem_peak_bytes), max(mem_current_bytes), min(CASE WHEN mem_limit_bytes < 1e308 THEN mem_limit_bytes END),
        avg(gpu_util_percent), max(gpu_util_percent), max(gpu_mem_bytes), max(io_read_bytes), max(io_write_bytes),
        max(oom_kills) FROM job_samples WHERE job_id = ? AND step = '' AND ts >= ? AND ts <= ? GROUP BY node"""

# The same figures from the 1-minute rollups, in _RAW_SQL's column order (each aggregated by its suffix).
_MINUTE_FIGURES = (
    "alloc_cpus_max",
    "mem_peak_bytes_max",
    "mem_current_bytes_max",
    "mem_limit_bytes_min",
    "gpu_util_percent_avg",  # mean weighted by samples
    "gpu_util_percent_max",
    "gpu_mem_bytes_max",
    "io_read_bytes_last",
    "io_write_bytes_last",
    "oom_kills_last",
)
_LIMIT = _MINUTE_FIGURES.index("mem_limit_bytes_min")
_CPU_COLUMNS = ("cpu_user_seconds_last", "cpu_system_seconds_last")


def _no_nan(values: list[float]) -> bool:
    total = sum(values)
    return total == total  # NaN is the only value not equal to itself (inf - inf is NaN too: slow path)


def _column(h: Hour, col: str, idx: list[int] | None) -> list[float]:
    """A column of a packed hour: all 60 minutes, or the minutes ``idx``."""
    return h[col].tolist() if idx is None else [h[col][i] for i in idx]


def _cpu_seconds(chunks: list[tuple[Hour, list[int] | None]]) -> float | None:
    """The highest user + system CPU seconds of any minute, a missing one counting 0, as _RAW_SQL does."""
    cpu: list[float] = []
    for h, idx in chunks:
        user, system = _column(h, _CPU_COLUMNS[0], idx), _column(h, _CPU_COLUMNS[1], idx)
        if _no_nan(user) and _no_nan(system):
            cpu.append(max(map(add, user, system)))
        else:
            cpu += [
                (u if u == u else 0.0) + (s if s == s else 0.0)
                for u, s in zip(user, system, strict=True)
                if u == u or s == s
            ]
    return max(cpu) if cpu else None


def _minute_rows(db: sqlite3.Connection, job_id: int, lo: int, hi: int) -> list[tuple[Any, ...]]:
    """Per node, _RAW_SQL's figures from the 1-minute rollups (packed hours and wide minutes) in [lo, hi].

    Hour by hour: a whole hour inside the job is taken as the arrays it is stored as.
    """
    nodes = [
        r[0] for r in db.execute("SELECT node FROM job_series WHERE job_id = ? AND step = ''", (job_id,))
    ]
    cols = [*_CPU_COLUMNS, *_MINUTE_FIGURES]
    out = []
    for node, hours in sorted(read_hours(db, job_id, "", nodes, cols, lo, hi + 1).items()):
        chunks = [(h, selection(h, hour, lo, hi + 1)) for hour, h in hours.items()]
        chunks = [(h, idx) for h, idx in chunks if idx is None or idx]
        count, figures = aggregate(_MINUTE_FIGURES, chunks)
        if not count:
            continue
        limit = figures[_LIMIT]
        if limit is not None and limit > 1e308:  # an unlimited limit (+inf) is no limit
            figures[_LIMIT] = None
        out.append((node, int(count), _cpu_seconds(chunks), *figures))
    return out


_METRICS_SQL = (
    "SELECT count(*), "
    + ", ".join(f"avg({c}), max({c})" for c in JOB_SAMPLE_COLUMNS)
    + " FROM job_samples WHERE job_id = ? AND step = '' AND ts >= ? AND ts <= ?"
)
_MEMORY_BOUNDED = ("mem_current_bytes", "mem_peak_bytes", "mem_anon_bytes", "mem_file_bytes")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _metric_figures(
    db: sqlite3.Connection, job_id: int, lo: int, hi: int, raw: bool
) -> dict[str, tuple[float | None, float | None]]:
    """Per job metric, (mean, highest value) of the whole-job samples of every node in [lo, hi]: from
    the raw samples, or (``raw`` False) from the 1-minute rollups, where a counter keeps no mean."""
    if raw:
        row = db.execute(_METRICS_SQL, (job_id, lo, hi)).fetchone()
        if not row or not row[0]:
            return {}
        figures = {
            c: (_finite(row[1 + 2 * i]), _finite(row[2 + 2 * i])) for i, c in enumerate(JOB_SAMPLE_COLUMNS)
        }
        return {c: pair for c, pair in figures.items() if pair != (None, None)}
    cols = [
        col
        for c in JOB_SAMPLE_COLUMNS
        for col in ([f"{c}_last"] if c in COUNTER_COLUMNS else [f"{c}_avg", f"{c}_max"])
    ]
    nodes = [
        r[0] for r in db.execute("SELECT node FROM job_series WHERE job_id = ? AND step = ''", (job_id,))
    ]
    sums: dict[str, list[float]] = {}  # column -> [sum of node mean x samples, samples]
    highest: dict[str, float] = {}
    for hours in read_hours(db, job_id, "", nodes, cols, lo, hi + 1).values():
        chunks = [(h, selection(h, hour, lo, hi + 1)) for hour, h in hours.items()]
        count, values = aggregate(cols, [(h, idx) for h, idx in chunks if idx is None or idx])
        for col, found in zip(cols, values, strict=True):
            value = _finite(found)
            if value is None:
                continue
            if col.endswith("_avg"):
                acc = sums.setdefault(col[: -len("_avg")], [0.0, 0.0])
                acc[0] += value * count
                acc[1] += count
            else:
                name = col.rsplit("_", 1)[0]
                highest[name] = max(highest.get(name, value), value)
    return {
        c: (sums[c][0] / sums[c][1] if c in sums and sums[c][1] else None, highest.get(c))
        for c in JOB_SAMPLE_COLUMNS
        if c in sums or c in highest
    }


def _limits(job: Any, nodes: list[NodeSummary], mem_limit: float | None) -> dict[str, float | None]:
    """What one node of the run was given, per metric that has such a bound."""
    num_nodes = max(1, len(nodes) or (job["num_nodes"] or 0))
    cpus = _max([n.alloc_cpus for n in nodes]) or (job["cpus"] / num_nodes if job["cpus"] else None)
    memory = mem_limit or (job["mem_requested_bytes"] / num_nodes if job["mem_requested_bytes"] else None)
    limits: dict[str, float | None] = {"cpu_cores": cpus, "gpu_util_percent": 100.0}
    limits.update(dict.fromkeys(_MEMORY_BOUNDED, memory))
    return limits


def _gpus(db: sqlite3.Connection, job_id: int, nodes: list[str], lo: int, hi: int) -> list[GpuSummary]:
    out = []
    for node in nodes:
        row = db.execute("SELECT gpus FROM nodes WHERE name = ?", (node,)).fetchone()
        for gpu in json.loads(row[0]) if row else []:
            r = db.execute(
                "SELECT count(*), avg(util_percent), max(util_percent), max(mem_used_bytes),"
                " max(energy_joules) - min(energy_joules) FROM gpu_samples"
                " WHERE uuid = ? AND ts >= ? AND ts <= ? AND job_id = ?",
                (gpu["uuid"], lo, hi, job_id),
            ).fetchone()
            if r[0]:
                out.append(GpuSummary(gpu["uuid"], node, r[1], r[2], r[3], r[4]))
    return out


def compute_summary(db: sqlite3.Connection, run_id: int, now: float) -> JobSummary | None:
    """The summary of job run ``run_id`` (without findings), or None if there is no such run."""
    job = db.execute("SELECT * FROM jobs WHERE run_id = ?", (run_id,)).fetchone()
    if job is None:
        return None
    start, stop = job["start_time"], job["stop_time"] or now
    lo, hi = int(start * 1000), int(stop * 1000)
    duration = max(0.0, float(stop - start))
    source = "job_samples"
    rows: list[Any] = db.execute(_RAW_SQL, (job["job_id"], lo, hi)).fetchall()
    if not rows:  # raw samples already deleted by retention: the 1-minute rollups
        source = "job_samples_1m"
        rows = _minute_rows(db, job["job_id"], lo - 60_000, hi)
    nodes: list[NodeSummary] = []
    for r in rows:
        alloc = r[3] if r[3] is not None else job["cpus"]
        eff = r[2] / (alloc * duration) if r[2] is not None and alloc and duration > 0 else None
        nodes.append(
            NodeSummary(
                r[0], r[1], r[2], alloc, eff, _max([r[4], r[5]]), r[6], r[7], r[8], r[9], r[10], r[11], r[12]
            )
        )
    node_names = [n.node for n in nodes] or json.loads(job["nodes"])
    gpu_detail = _gpus(db, job["job_id"], node_names, lo, hi)
    num_nodes = len(node_names) or (job["num_nodes"] or 0)
    gpus = max(len(gpu_detail), (job["gpus_per_node"] or 0) * num_nodes)
    cpu_seconds = _sum([n.cpu_seconds for n in nodes])
    alloc_core_seconds = _sum([n.alloc_cpus * duration if n.alloc_cpus else None for n in nodes])
    util_means = [g.util_mean_percent for g in gpu_detail if g.util_mean_percent is not None]
    node_means = [n.gpu_util_mean_percent for n in nodes if n.gpu_util_mean_percent is not None]
    mem_limit = _max([n.mem_limit_bytes for n in nodes])
    limits = _limits(job, nodes, mem_limit)
    raw = source == "job_samples"
    figures = _metric_figures(db, job["job_id"], lo if raw else lo - 60_000, hi, raw) if rows else {}
    gaps = db.execute(
        f"SELECT node, from_ms, to_ms, batches, bytes FROM gaps WHERE node IN ({', '.join('?' for _ in node_names)})"
        " AND to_ms >= ? AND from_ms <= ? ORDER BY from_ms",
        (*node_names, lo, hi),
    ).fetchall()
    return JobSummary(
        run_id=run_id,
        job_id=job["job_id"],
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
        mem_requested_bytes=job["mem_requested_bytes"],
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
        source=source if rows else "",
        gaps=tuple(
            {"node": g[0], "from_ms": g[1], "to_ms": g[2], "batches": g[3], "bytes": g[4]} for g in gaps
        ),
        nodes=tuple(nodes),
        gpu_detail=tuple(gpu_detail),
        metrics={
            c: {"mean": mean, "max": high, "limit": limits.get(c)} for c, (mean, high) in figures.items()
        },
    )


def load_summary(db: sqlite3.Connection, run_id: int) -> dict[str, Any] | None:
    row = db.execute("SELECT summary FROM job_summaries WHERE run_id = ?", (run_id,)).fetchone()
    return json.loads(row[0]) if row else None


def build_summary(
    db: sqlite3.Connection, run_id: int, now: float, thresholds: Thresholds
) -> JobSummary | None:
    """Summary with findings; only reads, so the collector runs it on a reader connection."""
    summary = compute_summary(db, run_id, now)
    if summary is None:
        return None
    return replace(summary, findings=tuple(evaluate(summary, thresholds)))


def store_summary(db: sqlite3.Connection, summary: JobSummary, now: float) -> None:
    """Store the summary and tag the run with its findings, in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT OR REPLACE INTO job_summaries (run_id, computed, summary) VALUES (?, ?, ?)",
            (summary.run_id, now, json.dumps(summary.to_dict())),
        )
        for finding in summary.findings:
            add_tag(db, summary.run_id, finding.rule, FINDING_TAG_TYPE, FINDING_CREATED_BY)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def summarize(db: sqlite3.Connection, run_id: int, now: float, thresholds: Thresholds) -> JobSummary | None:
    """Compute, evaluate and store the summary of one run; its findings become tags."""
    summary = build_summary(db, run_id, now, thresholds)
    if summary is not None:
        store_summary(db, summary, now)
    return summary


def pending_runs(db: sqlite3.Connection, now: float, delay_s: float, limit: int = 200) -> list[int]:
    """Runs that stopped at least ``delay_s`` ago and have no summary yet, oldest first.

    Only runs that stopped since the last completed pass are looked at (a day of slack for STOP events
    that arrive late), so the pass does not grow with the job history.
    """
    since = get_state(db, "summary_stop_watermark") or 0
    rows = db.execute(
        "SELECT run_id FROM jobs j WHERE stop_time > ? AND stop_time <= ?"
        " AND NOT EXISTS (SELECT 1 FROM job_summaries s WHERE s.run_id = j.run_id) ORDER BY stop_time LIMIT ?",
        (since - 86_400, now - delay_s, limit),
    ).fetchall()
    return [int(r[0]) for r in rows]


def advance_watermark(db: sqlite3.Connection, now: float, delay_s: float) -> None:
    """After a pass that summarized every pending run."""
    db.execute("BEGIN IMMEDIATE")
    set_state(db, "summary_stop_watermark", int(now - delay_s))
    db.execute("COMMIT")


def summarize_finished(
    db: sqlite3.Connection, now: float, delay_s: float, thresholds: Thresholds, limit: int = 200
) -> int:
    """Summarize pending runs on one connection (tests, tools); returns how many."""
    runs = pending_runs(db, now, delay_s, limit)
    for run_id in runs:
        summarize(db, run_id, now, thresholds)
    if len(runs) < limit:
        advance_watermark(db, now, delay_s)
    return len(runs)
