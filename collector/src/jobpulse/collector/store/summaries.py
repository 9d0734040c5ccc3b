"""Job summaries in SQLite: the figures a run's summary is computed from, the stored summaries, and the
summary pass's bookkeeping (which runs still need one).

The figures come from the raw samples, or from the 1-minute rollups once retention deleted those (a
job summarized late, e.g. after the collector was down). What they add up to, and which findings they
trigger, is summary.py's and findings.py's business; the pass itself is services/summaries.py.
Summaries are stored as JSON in ``job_summaries``, which retention never touches; each finding is a tag
on the run (type ``finding``, created by ``jobpulse``).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from operator import add
from typing import Any

from jobpulse.collector.domain.jobs import FINDING_CREATED_BY, FINDING_TAG_TYPE
from jobpulse.collector.domain.runs import EDGE_SECONDS
from jobpulse.collector.domain.summaries import Finding, StoredSummary
from jobpulse.collector.store.base import GpuFigures, NodeFigures, RunFigures
from jobpulse.collector.store.migrations import COUNTER_COLUMNS, JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.packed import Hour, read_hours, selection
from jobpulse.collector.store.packing import aggregate
from jobpulse.collector.store.runrows import run_of
from jobpulse.collector.store.state import get_state, set_state
from jobpulse.collector.store.tags import add_tag

WATERMARK = "summary_stop_watermark"

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


def _minute_rows(db: sqlite3.Connection, job_id: int, lo: int, hi: int) -> list[NodeFigures]:
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
        out.append(NodeFigures(node, int(count), _cpu_seconds(chunks), *figures))
    return out


def _gpus(db: sqlite3.Connection, job_id: int, nodes: list[str], lo: int, hi: int) -> list[GpuFigures]:
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
                out.append(GpuFigures(gpu["uuid"], node, r[1], r[2], r[3], r[4]))
    return out


_METRICS_SQL = (
    "SELECT count(*), "
    + ", ".join(f"avg({c}), max({c})" for c in JOB_SAMPLE_COLUMNS)
    + " FROM job_samples WHERE job_id = ? AND step = '' AND ts >= ? AND ts <= ?"
)


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


def run_figures(db: sqlite3.Connection, run_id: int, now: float) -> RunFigures | None:
    """What the summary of run ``run_id`` is computed from (a running run up to ``now``); None if there
    is no such run. Only reads, so the collector runs it on a reader connection."""
    job = db.execute("SELECT * FROM jobs WHERE run_id = ?", (run_id,)).fetchone()
    if job is None:
        return None
    start, stop = job["start_time"], job["stop_time"] or now
    lo, hi = int(start * 1000), int(stop * 1000)
    if job["stop_time"]:
        # Stop times are whole seconds, and Slurm's End (the reconciler's) comes before the agent's last
        # readings (its counters read as the steps went, the epilog's final sample): an ended run's
        # samples reach EDGE_SECONDS past its stop, as its series do (jobs.run_scope), up to a next run.
        hi += EDGE_SECONDS * 1000
        later = db.execute(
            "SELECT min(start_time) FROM jobs WHERE job_id = ? AND cluster = ? AND start_time > ?",
            (job["job_id"], job["cluster"], start),
        ).fetchone()[0]
        if later is not None:
            hi = min(hi, int(later) * 1000 - 1)
    source = "job_samples"
    nodes = [NodeFigures(*r) for r in db.execute(_RAW_SQL, (job["job_id"], lo, hi))]
    if not nodes:  # raw samples already deleted by retention: the 1-minute rollups
        source = "job_samples_1m"
        nodes = _minute_rows(db, job["job_id"], lo - 60_000, hi)
    raw = source == "job_samples"
    metrics = _metric_figures(db, job["job_id"], lo if raw else lo - 60_000, hi, raw) if nodes else {}
    node_names = [n.node for n in nodes] or json.loads(job["nodes"])
    gaps = db.execute(
        f"SELECT node, from_ms, to_ms, batches, bytes FROM gaps WHERE node IN ({', '.join('?' for _ in node_names)})"
        " AND to_ms >= ? AND from_ms <= ? ORDER BY from_ms",
        (*node_names, lo, hi),
    ).fetchall()
    return RunFigures(
        run=run_of(job),
        start=start,
        stop=stop,
        source=source,
        nodes=nodes,
        node_names=node_names,
        gpus=_gpus(db, job["job_id"], node_names, lo, hi),
        gaps=[{"node": g[0], "from_ms": g[1], "to_ms": g[2], "batches": g[3], "bytes": g[4]} for g in gaps],
        metrics=metrics,
    )


def load_summary(db: sqlite3.Connection, run_id: int) -> StoredSummary | None:
    """The run's summary as stored, its findings apart; None until it has one."""
    row = db.execute("SELECT summary FROM job_summaries WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    document = json.loads(row[0])
    found = document.pop("findings", None) or []
    return StoredSummary(figures=document, findings=tuple(_finding(f) for f in found))


def _finding(stored: dict[str, Any]) -> Finding:
    """A finding as stored in the summary's JSON, its numbers as stored (an integer threshold, such as a
    node count, stays one); tolerant of a field an older version did not write."""
    return Finding(
        rule=stored.get("rule", ""),
        value=stored.get("value", 0.0),
        threshold=stored.get("threshold", 0.0),
        hint=stored.get("hint", ""),
    )


def store_summary(
    db: sqlite3.Connection, run_id: int, computed: float, summary: dict[str, Any], findings: Sequence[str]
) -> None:
    """Store the summary and tag the run with its findings (rule names), in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT OR REPLACE INTO job_summaries (run_id, computed, summary) VALUES (?, ?, ?)",
            (run_id, computed, json.dumps(summary)),
        )
        for rule in findings:
            add_tag(db, run_id, rule, FINDING_TAG_TYPE, FINDING_CREATED_BY)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# Runs that stopped up to this long before the last completed pass are still looked at by the next one.
LATE_STOP_SLACK = 86_400


def drop_early_summary(db: sqlite3.Connection, run_id: int) -> bool:
    """Drop the run's summary and its findings when a node's final batch (its epilog's STOP, after
    which that node sends nothing more of the job) arrives after the summary was computed; whether it
    did. The next pass computes it again from everything (``pending_runs``), so a summary never keeps
    missing a node's last readings (an OOM kill counted as the job ended, its last CPU-seconds) that
    came later than ``summary_delay`` after Slurm's End: a loaded node or collector, an agent that
    was away. Not for a run the pass no longer looks at (stopped over a day before its watermark): its
    summary stays as it is.

    The caller holds the transaction."""
    row = db.execute(
        "SELECT j.stop_time FROM jobs j JOIN job_summaries s ON s.run_id = j.run_id WHERE j.run_id = ?",
        (run_id,),
    ).fetchone()
    if row is None or row[0] is None or row[0] <= (get_state(db, WATERMARK) or 0) - LATE_STOP_SLACK:
        return False
    db.execute("DELETE FROM job_summaries WHERE run_id = ?", (run_id,))
    db.execute(
        "DELETE FROM job_tags WHERE run_id = ? AND tag_id IN"
        " (SELECT id FROM tags WHERE type = ? AND created_by = ?)",
        (run_id, FINDING_TAG_TYPE, FINDING_CREATED_BY),
    )
    return True


def pending_runs(db: sqlite3.Connection, now: float, delay_s: float, limit: int = 200) -> list[int]:
    """Runs that stopped at least ``delay_s`` ago and have no summary yet, oldest first.

    Only runs that stopped since the last completed pass are looked at (a day of slack for STOP events
    that arrive late), so the pass does not grow with the job history.
    """
    since = get_state(db, WATERMARK) or 0
    rows = db.execute(
        "SELECT run_id FROM jobs j WHERE stop_time > ? AND stop_time <= ?"
        " AND NOT EXISTS (SELECT 1 FROM job_summaries s WHERE s.run_id = j.run_id) ORDER BY stop_time LIMIT ?",
        (since - LATE_STOP_SLACK, now - delay_s, limit),
    ).fetchall()
    return [int(r[0]) for r in rows]


def advance_watermark(db: sqlite3.Connection, now: float, delay_s: float) -> None:
    """After a pass that summarized every pending run."""
    db.execute("BEGIN IMMEDIATE")
    set_state(db, WATERMARK, int(now - delay_s))
    db.execute("COMMIT")
