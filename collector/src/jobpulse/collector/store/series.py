"""Metric series of a job, bucketed to a sample interval: the one query behind charts and exports.

Contract (the endpoints depend only on this; a rollup-aware implementation may replace the body):

``job_series(db, job_id, metrics, sample_interval_s, agg_fn, nodes=None, across_nodes=False,
start_ms=None, end_ms=None) -> dict[str, dict[str, list[tuple[float, float]]]]``

- ``metrics``: measurement names, i.e. ``job_samples`` value columns (``JOB_SAMPLE_COLUMNS``);
  an unknown name raises ``ValueError``.
- ``sample_interval_s`` > 0: bucket width in seconds; a bucket is stamped with its start.
- ``agg_fn``: ``avg`` (alias ``mean``), ``min``, ``max`` or ``sum``, applied to the samples of one
  node within one bucket; with ``across_nodes`` the per-node bucket values are then combined with the
  same function into the single node key ``ACROSS_NODES``. Unknown: ``ValueError``.
- ``nodes``: only these nodes (None: all). ``start_ms``/``end_ms``: inclusive window in ms (None: open).
- Returns ``{metric: {node: [(bucket_start_s, value), ...]}}`` in time order. Every requested metric is a
  key; nodes without a finite value for it are absent. Not-measured (NULL) and infinite values (an
  unlimited memory limit) are skipped, never returned.
Only the whole-job rows (``step = ''``) are read.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS

AGG_FNS: dict[str, str] = {"avg": "AVG", "mean": "AVG", "min": "MIN", "max": "MAX", "sum": "SUM"}
ACROSS_NODES = "all"

Series = dict[str, dict[str, list[tuple[float, float]]]]

_COMBINE: dict[str, Callable[[list[float]], float]] = {
    "AVG": lambda v: sum(v) / len(v),
    "MIN": min,
    "MAX": max,
    "SUM": sum,
}


def job_series(
    db: sqlite3.Connection,
    job_id: int,
    metrics: Sequence[str],
    sample_interval_s: float,
    agg_fn: str,
    nodes: Iterable[str] | None = None,
    across_nodes: bool = False,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Series:
    """See the module docstring for the contract."""
    unknown = [m for m in metrics if m not in JOB_SAMPLE_COLUMNS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}")
    fn = AGG_FNS.get(agg_fn)
    if fn is None:
        raise ValueError(f"unknown aggregation function {agg_fn!r}; one of {sorted(AGG_FNS)}")
    if not sample_interval_s > 0:
        raise ValueError("sample_interval_s must be positive")
    result: Series = {m: {} for m in metrics}
    if not metrics:
        return result
    width_ms = max(1, round(sample_interval_s * 1000))
    # 9e999 is +Inf in SQLite; NaN is stored as NULL and ignored by the aggregates.
    columns = ", ".join(f"{fn}(CASE WHEN abs({m}) < 9e999 THEN {m} END)" for m in metrics)
    sql = f"SELECT node, (ts / ?) * ? AS bucket, {columns} FROM job_samples WHERE job_id = ? AND step = ''"
    params: list[object] = [width_ms, width_ms, job_id]
    node_list = list(nodes) if nodes is not None else None
    if node_list is not None:
        sql += f" AND node IN ({', '.join('?' for _ in node_list)})"
        params += node_list
    if start_ms is not None:
        sql += " AND ts >= ?"
        params.append(start_ms)
    if end_ms is not None:
        sql += " AND ts <= ?"
        params.append(end_ms)
    sql += " GROUP BY node, bucket ORDER BY node, bucket"
    for row in db.execute(sql, params):
        node, bucket = row[0], row[1] / 1000
        for metric, value in zip(metrics, row[2:], strict=True):
            if value is not None:
                result[metric].setdefault(node, []).append((bucket, float(value)))
    if across_nodes:
        combine = _COMBINE[fn]
        for metric, per_node in result.items():
            buckets: dict[float, list[float]] = defaultdict(list)
            for points in per_node.values():
                for ts, value in points:
                    buckets[ts].append(value)
            result[metric] = (
                {ACROSS_NODES: [(ts, combine(buckets[ts])) for ts in sorted(buckets)]} if buckets else {}
            )
    return result


def sampling(db: sqlite3.Connection, job_id: int, start_ms: int | None = None) -> tuple[float | None, int]:
    """(the measured sample interval in seconds, the number of whole-job samples) of a job.

    The interval is the mean spacing on the node with most samples; None with fewer than two samples.
    """
    sql = "SELECT node, count(*) AS n, min(ts), max(ts) FROM job_samples WHERE job_id = ? AND step = ''"
    params: list[object] = [job_id]
    if start_ms is not None:
        sql += " AND ts >= ?"
        params.append(start_ms)
    rows = db.execute(sql + " GROUP BY node ORDER BY n DESC", params).fetchall()
    total = sum(int(r[1]) for r in rows)
    if not rows or rows[0][1] < 2:
        return None, total
    return (rows[0][3] - rows[0][2]) / 1000 / (rows[0][1] - 1), total
