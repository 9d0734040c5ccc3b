"""The 1-minute part of a job series, from the packed hour rows (``store/packed.py``) plus wide minutes.

The SQL path (``series._query``) reads raw and hourly rows; the 1-minute resolution is stored as
arrays SQLite cannot look into, so it is aggregated here, with the same rules: within an interval a
node's minutes combine with ``agg_fn`` (``avg`` weighted by samples, ``sum`` = mean x samples),
counters report their last value (the maximum), and ``across_nodes`` combines the per-node values of
each interval with ``agg_fn`` (plain, unweighted, as SQL's aggregate over the per-node rows).

The common case, an interval of exactly 60 s, copies whole hours of values at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from jobpulse.collector.store.migrations import COUNTER_COLUMNS
from jobpulse.collector.store.packed import HOUR_MS, MINUTE_MS, Hour, minutes, read_hours

Rows = list[tuple[str, list[int], list[list[Any]]]]  # (node or "*", times, values per metric)
_FULL = list(range(60))


def _sources(metric: str, agg_fn: str) -> str:
    """The packed column a metric is read from for ``agg_fn``."""
    if metric in COUNTER_COLUMNS:
        return f"{metric}_last"
    return f"{metric}_avg" if agg_fn in ("avg", "sum") else f"{metric}_{agg_fn}"


def _clean(values: list[float], limit: bool) -> list[Any]:
    """NaN (not measured) -> None; for the memory limit also +inf (unlimited), which JSON cannot hold."""
    total = sum(values)
    if total == total and not (limit and total > 1e308):
        return values
    if limit:
        return [None if v != v or v > 1e308 else v for v in values]
    return [None if v != v else v for v in values]


def _node_minutes(
    hours: dict[int, Hour], cols: list[str], weighted: list[bool], lo: int, hi: int
) -> tuple[list[int], list[list[float]], list[float]]:
    """(times, values per column, samples) of one node's minutes in [lo, hi), hour by hour."""
    times: list[int] = []
    values: list[list[float]] = [[] for _ in cols]
    samples: list[float] = []
    for hour in sorted(hours):
        h = hours[hour]
        n = h["n"]
        if lo <= hour and hour + HOUR_MS <= hi and min(n) > 0:
            times.extend(range(hour, hour + HOUR_MS, MINUTE_MS))
            idx = _FULL
            samples.extend(n)
            for out, c, w in zip(values, cols, weighted, strict=True):
                out.extend([a * k for a, k in zip(h[c], n, strict=True)] if w else h[c])
            continue
        idx = [i for i, t in minutes(hour, h, lo, hi)]
        times.extend(hour + i * MINUTE_MS for i in idx)
        samples.extend(n[i] for i in idx)
        for out, c, w in zip(values, cols, weighted, strict=True):
            arr = h[c]
            out.extend(arr[i] * n[i] for i in idx) if w else out.extend(arr[i] for i in idx)
    return times, values, samples


def _bucket(
    times: list[int], values: list[float], samples: list[float], interval_ms: int, how: str
) -> tuple[list[int], list[float]]:
    """Combine minutes into intervals: ``how`` is avg (weighted by samples), sum, min or max; NaN skipped."""
    out_t: list[int] = []
    out_v: list[float] = []
    acc: list[float] = []
    weights: list[float] = []
    current = None
    nan = float("nan")

    def flush() -> None:
        if how == "avg":
            total = sum(weights)
            out_v.append(sum(acc) / total if acc and total else nan)
        elif not acc:
            out_v.append(nan)
        else:
            out_v.append(sum(acc) if how == "sum" else (min(acc) if how == "min" else max(acc)))

    for t, v, k in zip(times, values, samples, strict=True):
        b = t - t % interval_ms
        if b != current:
            if current is not None:
                flush()
            out_t.append(b)
            current = b
            acc, weights = [], []
        if v == v:
            acc.append(v * k if how == "avg" else v)
            weights.append(k)
    if current is not None:
        flush()
    return out_t, out_v


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


_ACROSS: dict[str, Callable[[list[float]], float]] = {"avg": _mean, "sum": sum, "min": min, "max": max}


def _across(
    per_node: list[tuple[list[int], list[list[float]]]], agg_fn: str
) -> tuple[list[int], list[list[float]]]:
    """Per interval, ``agg_fn`` over the nodes' values (NaN skipped), like SQL's aggregate over rows."""
    buckets: dict[int, list[list[float]]] = {}
    width = len(per_node[0][1]) if per_node else 0
    for times, values in per_node:
        for j, t in enumerate(times):
            slot = buckets.get(t)
            if slot is None:
                slot = buckets[t] = [[] for _ in range(width)]
            for m in range(width):
                v = values[m][j]
                if v == v:
                    slot[m].append(v)
    fn = _ACROSS[agg_fn]
    times = sorted(buckets)
    nan = float("nan")
    return times, [[fn(buckets[t][m]) if buckets[t][m] else nan for t in times] for m in range(width)]


def minute_series(
    db: sqlite3.Connection,
    job_id: int,
    step: str,
    nodes: Sequence[str],
    metrics: Sequence[str],
    interval: int,
    agg_fn: str,
    across_nodes: bool,
    lo: int,
    hi: int,
) -> Rows:
    """One row per node with data (or one "*" row): (node, interval starts, values per metric)."""
    cols = [_sources(m, agg_fn) for m in metrics]
    # sum of a gauge is mean x samples per minute; other columns are read as stored
    weighted = [agg_fn == "sum" and m not in COUNTER_COLUMNS for m in metrics]
    data = read_hours(db, job_id, step, nodes, cols, lo, hi)
    hows = [
        "max" if m in COUNTER_COLUMNS else ("sum" if w else agg_fn)
        for m, w in zip(metrics, weighted, strict=True)
    ]
    interval_ms = interval * 1000
    per_node: list[tuple[str, list[int], list[list[float]]]] = []
    for node in sorted(data):
        times, values, samples = _node_minutes(data[node], cols, weighted, lo, hi)
        if not times:
            continue
        if interval_ms != MINUTE_MS:
            bucketed = [
                _bucket(times, v, samples, interval_ms, how) for v, how in zip(values, hows, strict=True)
            ]
            times = bucketed[0][0]
            values = [b[1] for b in bucketed]
        per_node.append((node, times, values))
    limits = [m == "mem_limit_bytes" for m in metrics]
    if across_nodes:
        if not per_node:
            return []
        times, values = _across([(t, v) for _, t, v in per_node], agg_fn)
        return [("*", times, [_clean(v, lim) for v, lim in zip(values, limits, strict=True)])]
    return [
        (node, t, [_clean(column, lim) for column, lim in zip(v, limits, strict=True)])
        for node, t, v in per_node
    ]
