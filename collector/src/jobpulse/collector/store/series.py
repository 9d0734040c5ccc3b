"""Job time series at a requested interval, from the coarsest stored resolution that satisfies it.

Contract of :func:`job_series` (the HTTP API calls it for GET /api/job/{id} and GET /api/metric/{id}):

- ``metrics``: job sample columns (``migrations.JOB_SAMPLE_COLUMNS``), e.g. ``cpu_cores``,
  ``mem_current_bytes``.
- ``sample_interval_s``: the width of one output point, seconds (integer >= 1). The source is the
  coarsest resolution not coarser than it: 1-hour rows for intervals >= 3600, 1-minute rows for
  >= 60, raw samples below. Where that resolution does not cover part of the requested time the
  answer is stitched from the others: periods not yet rolled up come from finer data, periods whose
  finer data retention has already deleted come from the coarser table. ``resolutions`` in the answer
  lists the tables used.
- ``agg_fn``: ``avg``, ``min``, ``max`` or ``sum``. Within one interval the samples of a node are
  aggregated with it (``sum`` adds the samples, so it depends on how many there are; a rollup row
  counts as its number of samples). Cumulative counters (``cpu_user_seconds``, ``cpu_system_seconds``,
  ``oom_kills``, ``io_read_bytes``, ``io_write_bytes``) always report their value at the end of the
  interval, whatever ``agg_fn``.
- ``across_nodes``: aggregate the per-node points of each interval with ``agg_fn`` into one series
  keyed ``"*"``; otherwise one series per node. ``nodes`` limits the nodes (default: all of the job).
- ``start_ms`` / ``end_ms``: optional bounds, ms since the epoch, start inclusive, end exclusive.
- ``step``: the Slurm step ("" = the whole job).

Returns ``{"sample_interval_s", "agg_fn", "resolutions", "series": {metric: {node: {"t": [...], "v": [...]}}}}``,
columnar (what chart libraries such as uPlot take, and half the JSON of point pairs): ``t`` holds the
start of each interval in ms since the epoch, ``v`` the values, None where nothing was measured; an
unlimited memory limit (+inf) is None as well. The ``t`` list may be shared between metrics: copy it
before changing it. Invalid arguments raise ValueError naming the parameter.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from jobpulse.collector.domain.runs import RunScope
from jobpulse.collector.store.migrations import COUNTER_COLUMNS, JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.packed import MINUTE_MS, POS
from jobpulse.collector.store.series_1m import minute_series
from jobpulse.collector.store.state import get_state

AGG_FNS = ("avg", "min", "max", "sum")
_NEG, _POS = -POS, POS
# (name, resolution s) from finest to coarsest; "job_samples_1m" stands for the 1-minute resolution, stored
# packed by hour in job_samples_1m_packed plus wide rows for the hour in progress (store/packed.py).
_TABLES = (("job_samples", 0), ("job_samples_1m", 60), ("job_samples_1h", 3600))


def _validate(metrics: Sequence[str], sample_interval_s: object, agg_fn: str) -> int:
    if agg_fn not in AGG_FNS:
        raise ValueError(f"agg_fn must be one of {', '.join(AGG_FNS)}, not {agg_fn!r}")
    if isinstance(sample_interval_s, bool) or not isinstance(sample_interval_s, int) or sample_interval_s < 1:
        raise ValueError(
            f"sample_interval_s must be a whole number of seconds >= 1, not {sample_interval_s!r}"
        )
    if not metrics:
        raise ValueError("metrics must name at least one metric")
    unknown = [m for m in metrics if m not in JOB_SAMPLE_COLUMNS]
    if unknown:
        raise ValueError(f"metrics: unknown metric(s) {', '.join(map(repr, unknown))}")
    return sample_interval_s


def _time_expr(table: str, metric: str, agg_fn: str) -> str:
    if table == "job_samples":
        return f"max({metric})" if metric in COUNTER_COLUMNS else f"{agg_fn}({metric})"
    if metric in COUNTER_COLUMNS:
        return f"max({metric}_last)"
    if agg_fn == "avg":
        return f"sum({metric}_avg * n) / sum(CASE WHEN {metric}_avg IS NOT NULL THEN n END)"
    if agg_fn == "sum":
        return f"sum({metric}_avg * n)"
    return f"{agg_fn}({metric}_{agg_fn})"


def _windows(db: sqlite3.Connection) -> list[tuple[int, int]]:
    """The time each table is authoritative for: [from, to) in ms."""

    def state(key: str, default: int) -> int:
        value = get_state(db, key)
        return default if value is None else value

    upto_1m = state("rollup_1m_upto_ms", _NEG)
    upto_1h = state("rollup_1h_upto_ms", _NEG)
    return [
        (state("raw_kept_from_ms", _NEG), _POS),
        (state("m1_kept_from_ms", _NEG), upto_1m),
        (state("h1_kept_from_ms", _NEG), upto_1h),
    ]


def _segments(windows: list[tuple[int, int]], preferred: int) -> list[tuple[int, int, int]]:
    """(table index, from, to): the preferred table's window, finer tables after it, coarser before."""
    lo, hi = windows[preferred]
    segs = [(preferred, lo, hi)] if lo < hi else []
    for finer in range(preferred - 1, -1, -1):
        top = windows[finer][1]
        if top > hi:
            segs.append((finer, hi, top))
            hi = top
    for coarser in range(preferred + 1, len(windows)):
        bottom = windows[coarser][0]
        if bottom < lo:
            segs.append((coarser, bottom, min(lo, windows[coarser][1])))
            lo = bottom
    return sorted(segs, key=lambda s: s[1])


def job_series(
    db: sqlite3.Connection,
    job_id: int,
    metrics: Sequence[str],
    sample_interval_s: int,
    agg_fn: str = "avg",
    nodes: Sequence[str] | None = None,
    across_nodes: bool = False,
    start_ms: int | None = None,
    end_ms: int | None = None,
    step: str = "",
) -> dict[str, Any]:
    """See the module docstring for the contract."""
    interval = _validate(metrics, sample_interval_s, agg_fn)
    preferred = max(i for i, (_, res) in enumerate(_TABLES) if res <= interval)
    if nodes is None:
        nodes = [
            r[0]
            for r in db.execute("SELECT node FROM job_series WHERE job_id = ? AND step = ?", (job_id, step))
        ]
    series: dict[str, dict[str, dict[str, list[Any]]]] = {m: {} for m in metrics}
    used: list[str] = []
    for index, lo, hi in _segments(_windows(db), preferred):
        lo, hi = (
            max(lo, start_ms if start_ms is not None else _NEG),
            min(hi, end_ms if end_ms is not None else _POS),
        )
        if lo >= hi or not nodes:
            continue
        table, res = _TABLES[index]
        if table == "job_samples_1m":  # packed by hour: aggregated in Python (store/series_1m.py)
            # A run starts within a minute (its start less START_EDGE): that minute holds its first samples,
            # and a minute is read only when it starts within the range. Read from the minute's start, as
            # the raw samples are bucketed (intervals of whole minutes); before the run's start within that
            # minute there can only be a requeued previous run's last samples, a few seconds at most.
            lo -= lo % MINUTE_MS
            rows = minute_series(
                db, job_id, step, list(nodes), metrics, interval, agg_fn, across_nodes, lo, hi
            )
        else:
            rows = [
                (r[0], json.loads(r[1]), [json.loads(v) for v in r[2:]])
                for r in _query(
                    db, table, res, job_id, step, list(nodes), metrics, interval, agg_fn, across_nodes, lo, hi
                )
            ]
        if rows:
            used.append(table)
        for node, times, columns in rows:
            for metric, values in zip(metrics, columns, strict=True):
                _extend(series[metric].setdefault(node, {"t": [], "v": []}), times, values, agg_fn)
    return {"sample_interval_s": interval, "agg_fn": agg_fn, "resolutions": used, "series": series}


def _direct_expr(metric: str, agg_fn: str) -> str:
    """A rollup column read as is, when one output interval is exactly one rollup row."""
    if metric in COUNTER_COLUMNS:
        return f"{metric}_last"
    return f"{metric}_avg * n" if agg_fn == "sum" else f"{metric}_{agg_fn}"


def _query(
    db: sqlite3.Connection,
    table: str,
    res: int,
    job_id: int,
    step: str,
    nodes: list[str],
    metrics: Sequence[str],
    interval: int,
    agg_fn: str,
    across_nodes: bool,
    lo: int,
    hi: int,
) -> list[Any]:
    """One row per node (or one "*" row): JSON arrays of times and of each metric, built by SQLite in C.

    When the interval equals the table's resolution the rows are read in key order without grouping:
    that is the common case (a job page at 60 s) and grouping by an expression would sort.
    """
    marks = ", ".join("?" for _ in nodes)
    where = f"WHERE job_id = ? AND node IN ({marks}) AND step = ? AND ts >= ? AND ts < ?"
    if interval == res:
        values = ", ".join(f"{_direct_expr(m, agg_fn)} AS v{i}" for i, m in enumerate(metrics))
        inner = f"SELECT node, ts AS b, {values} FROM {table} {where} ORDER BY node, ts"
    else:
        interval_ms = interval * 1000
        values = ", ".join(f"{_time_expr(table, m, agg_fn)} AS v{i}" for i, m in enumerate(metrics))
        inner = (
            f"SELECT node, (ts / {interval_ms}) * {interval_ms} AS b, {values} FROM {table} {where}"
            " GROUP BY node, b ORDER BY node, b"
        )
    arrays = _arrays(metrics)
    if across_nodes:
        per_b = ", ".join(f"{agg_fn}(v{i}) AS v{i}" for i in range(len(metrics)))
        sql = f"SELECT '*', {arrays} FROM (SELECT b, {per_b} FROM ({inner}) GROUP BY b ORDER BY b)"
    else:
        sql = f"SELECT node, {arrays} FROM ({inner}) GROUP BY node"
    rows = db.execute(sql, (job_id, *nodes, step, lo, hi)).fetchall()
    return [r for r in rows if r[1] != "[]"]


def _arrays(metrics: Sequence[str]) -> str:
    """JSON has no infinity: an unlimited memory limit becomes null."""
    out = ["json_group_array(b)"]
    for i, m in enumerate(metrics):
        v = f"CASE WHEN v{i} > 1e308 THEN NULL ELSE v{i} END" if m == "mem_limit_bytes" else f"v{i}"
        out.append(f"json_group_array({v})")
    return ", ".join(out)


def _extend(into: dict[str, list[Any]], times: list[int], values: list[Any], agg_fn: str) -> None:
    """Append a later segment; an interval split by a segment boundary is combined, not repeated."""
    t, v = into["t"], into["v"]
    if times and t and t[-1] == times[0]:
        a, b = v[-1], values[0]
        if a is None or b is None:
            v[-1] = a if b is None else b
        elif agg_fn == "min":
            v[-1] = min(a, b)
        elif agg_fn == "max":
            v[-1] = max(a, b)
        elif agg_fn == "sum":
            v[-1] = a + b
        else:
            v[-1] = (a + b) / 2
        times, values = times[1:], values[1:]
    # ``t`` lists are shared between the metrics of a row: never change one in place.
    into["t"] = t + times if t else times
    if v:
        v.extend(values)
    else:
        into["v"] = values


ACROSS_NODES = "all"
Points = dict[str, dict[str, list[tuple[float, float]]]]


def job_series_points(
    db: sqlite3.Connection,
    scope: RunScope,
    metrics: Sequence[str],
    sample_interval_s: float,
    agg_fn: str,
    across_nodes: bool = False,
    step: str = "",
) -> Points:
    """:func:`job_series` of one run as (interval start in s, value) pairs per node: the shape of
    JobMon's MetricData.

    ``mean`` is accepted for ``avg`` (JobMon's name), a fractional interval is rounded up to whole
    seconds, points that were not measured are left out, and the across-nodes series is keyed
    ``ACROSS_NODES``. Every requested metric is a key; nodes without any value for it are absent.
    """
    fn = "avg" if agg_fn == "mean" else agg_fn
    interval = max(1, math.ceil(sample_interval_s))
    answer = job_series(
        db,
        scope.job_id,
        metrics,
        interval,
        fn,
        nodes=scope.nodes,
        across_nodes=across_nodes,
        start_ms=scope.start_ms,
        end_ms=scope.end_ms,
        step=step,
    )
    out: Points = {m: {} for m in metrics}
    seconds: dict[int, list[float]] = {}  # ``t`` lists are shared between metrics: convert each once
    for metric, per_node in answer["series"].items():
        for node, column in per_node.items():
            times, values = column["t"], column["v"]
            if id(times) not in seconds:
                seconds[id(times)] = [t / 1000 for t in times]
            if None in values:
                points = [
                    (t, float(v)) for t, v in zip(seconds[id(times)], values, strict=True) if v is not None
                ]
            else:  # nothing to leave out: pairs built in C
                points = list(zip(seconds[id(times)], map(float, values), strict=True))
            if points:
                out[metric][ACROSS_NODES if node == "*" else node] = points
    return out


def sampling(db: sqlite3.Connection, scope: RunScope) -> tuple[float | None, int]:
    """(the measured sample interval in seconds, the number of whole-job samples) of a run.

    The interval is the mean spacing on the node with most samples; None with fewer than two samples.
    """
    if not scope.nodes:
        return None, 0
    marks = ", ".join("?" for _ in scope.nodes)
    sql = (
        "SELECT node, count(*) AS n, min(ts), max(ts) FROM job_samples"
        f" WHERE job_id = ? AND step = '' AND node IN ({marks}) AND ts >= ? AND ts < ?"
    )
    params = [scope.job_id, *scope.nodes, scope.start_ms, scope.end_ms if scope.end_ms is not None else _POS]
    rows = db.execute(sql + " GROUP BY node ORDER BY n DESC", params).fetchall()
    total = sum(int(r[1]) for r in rows)
    if not rows or rows[0][1] < 2:
        return None, total
    return (rows[0][3] - rows[0][2]) / 1000 / (rows[0][1] - 1), total
