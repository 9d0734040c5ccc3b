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
from bisect import bisect_left
from collections.abc import Callable, Sequence
from operator import add, mul, truediv
from typing import Any

from jobpulse.collector.store.migrations import COUNTER_COLUMNS
from jobpulse.collector.store.packed import HOUR_MS, MINUTE_MS, Hour, decode, fetch, merge, selection

Rows = list[tuple[str, list[int], list[list[Any]]]]  # (node or "*", times, values per metric)
_ZERO = bytes(8)


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
    hours: dict[int, Hour], cols: list[str], lo: int, hi: int
) -> tuple[list[int], list[list[float]], list[float]]:
    """(times, values per column, samples) of one node's minutes in [lo, hi), hour by hour."""
    times: list[int] = []
    values: list[list[float]] = [[] for _ in cols]
    samples: list[float] = []
    for hour in sorted(hours):
        h = hours[hour]
        n = h["n"]
        idx = selection(h, hour, lo, hi)
        if idx is None:
            times.extend(range(hour, hour + HOUR_MS, MINUTE_MS))
            samples.extend(n)
            for out, c in zip(values, cols, strict=True):
                out.extend(h[c])
            continue
        times.extend(hour + i * MINUTE_MS for i in idx)
        samples.extend(n[i] for i in idx)
        for out, c in zip(values, cols, strict=True):
            arr = h[c]
            out.extend(arr[i] for i in idx)
    return times, values, samples


def _spans(times: list[int], interval_ms: int) -> tuple[list[int], list[tuple[int, int]]]:
    """(interval starts, [first, last + 1) index of each interval's minutes) of one node's ascending
    minute times: one bisection per interval, not a Python step per minute."""
    starts: list[int] = []
    spans: list[tuple[int, int]] = []
    i, count = 0, len(times)
    while i < count:
        t = times[i]
        b = t - t % interval_ms
        j = bisect_left(times, b + interval_ms, i)
        starts.append(b)
        spans.append((i, j))
        i = j
    return starts, spans


def _strided_sum(values: Sequence[float], k: int) -> list[float]:
    """Sums of consecutive runs of ``k`` values (``len(values)`` a multiple of ``k``), added left to right
    as ``sum`` adds each run, in k passes over whole lists instead of a call per run."""
    total = list(values[0::k])
    for j in range(1, k):
        total = list(map(add, total, values[j::k]))
    return total


def _regular(spans: list[tuple[int, int]], k: int) -> tuple[int, int, int]:
    """(first span, last span + 1, first minute) of the run of spans of exactly ``k`` minutes between a
    partial first and a partial last interval: every span of consecutive minutes but those two."""
    lo = 1 if spans and spans[0][1] - spans[0][0] != k else 0
    hi = len(spans) - 1 if len(spans) > lo and spans[-1][1] - spans[-1][0] != k else len(spans)
    return lo, hi, spans[lo][0] if lo < hi else 0


def _combine(
    values: list[float], samples: Sequence[float], spans: list[tuple[int, int]], how: str, k: int = 0
) -> list[float]:
    """Each span of minutes combined with ``how``: avg (weighted by samples), sum, min or max; NaN (not
    measured) skipped, NaN where a span has no value. Slices and C-level reductions per interval; the sums
    run in minute order, so the figures are those of a minute-by-minute loop to the last bit.

    ``k``: the minutes are consecutive and every interval but the first and last has ``k`` of them; those
    are then combined in passes over strided lists (``_strided_sum``; min/max with k arguments a call)."""
    nan = float("nan")
    if sum(values) == sum(values):  # no NaN: whole slices
        weighted = list(map(mul, values, samples)) if how == "avg" else values  # the same products
        lo, hi, m0 = _regular(spans, k) if k > 1 else (0, 0, 0)
        m1 = m0 + (hi - lo) * k
        edges = spans[:lo] + spans[hi:]
        middle: list[float] = []
        if how == "avg":
            ends = [sum(weighted[i:j]) / sum(samples[i:j]) for i, j in edges]
            if hi > lo:
                middle = list(map(truediv, _strided_sum(weighted[m0:m1], k), _strided_sum(samples[m0:m1], k)))
        elif how == "sum":
            ends = [sum(values[i:j]) for i, j in edges]
            if hi > lo:
                middle = _strided_sum(values[m0:m1], k)
        else:
            fn = min if how == "min" else max
            ends = [fn(values[i:j]) for i, j in edges]
            if hi > lo:
                middle = list(map(fn, *[values[m0 + j : m1 : k] for j in range(k)]))
        return ends[:lo] + middle + ends[lo:]
    out: list[float] = []
    for i, j in spans:
        if how == "avg":
            pairs = [(v, k) for v, k in zip(values[i:j], samples[i:j], strict=True) if v == v]
            total = sum(k for _, k in pairs)
            out.append(sum(v * k for v, k in pairs) / total if pairs and total else nan)
            continue
        kept = [v for v in values[i:j] if v == v]
        if not kept:
            out.append(nan)
        else:
            out.append(sum(kept) if how == "sum" else (min(kept) if how == "min" else max(kept)))
    return out


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


_ACROSS: dict[str, Callable[[Sequence[float]], float]] = {"avg": _mean, "sum": sum, "min": min, "max": max}


def _across(
    per_node: list[tuple[list[int], list[list[float]]]], agg_fn: str
) -> tuple[list[int], list[list[float]]]:
    """Per interval, ``agg_fn`` over the nodes' values (NaN skipped), like SQL's aggregate over rows."""
    fn = _ACROSS[agg_fn]
    width = len(per_node[0][1])
    first = per_node[0][0]
    if all(t == first for t, _ in per_node) and all(sum(v) == sum(v) for _, vs in per_node for v in vs):
        # every node has the same intervals and no NaN: aggregate the columns of values directly
        return first, [list(map(fn, zip(*[vs[m] for _, vs in per_node], strict=True))) for m in range(width)]
    buckets: dict[int, list[list[float]]] = {}
    for times, values in per_node:
        for j, t in enumerate(times):
            slot = buckets.get(t)
            if slot is None:
                slot = buckets[t] = [[] for _ in range(width)]
            for m in range(width):
                v = values[m][j]
                if v == v:
                    slot[m].append(v)
    times = sorted(buckets)
    nan = float("nan")
    return times, [[fn(buckets[t][m]) if buckets[t][m] else nan for t in times] for m in range(width)]


def _ceil_minutes(ms: int) -> int:
    return -(-ms // MINUTE_MS)


def _whole_hours(
    cols: list[str], packed: dict[str, dict[int, bytes]], lo: int, hi: int
) -> tuple[list[int], list[list[float]], Sequence[float]] | None:
    """The fast path: a node whose data in [lo, hi) is a run of consecutive packed minutes.

    Each column's hours are joined as bytes and cut to the minutes in [lo, hi), less the minutes
    without data before the first and after the last (a job starts and ends mid-hour), then decoded
    once: no per-minute Python work. None when the node does not qualify (hours missing, or minutes
    without data in between): then the general path decodes hour by hour.
    """
    n_hours = packed.get("n")
    if not n_hours:
        return None
    hours = sorted(n_hours)
    first, last = hours[0], hours[-1]
    if last - first != (len(hours) - 1) * HOUR_MS:
        return None
    joined = []
    for c in cols:
        per_hour = packed.get(c)
        if per_hour is None or len(per_hour) != len(hours):
            return None
        try:
            joined.append(b"".join([per_hour[h] for h in hours]))
        except KeyError:
            return None
    start = max(0, _ceil_minutes(lo - first))
    stop = min(len(hours) * 60, _ceil_minutes(hi - first))
    n = decode(joined[0])
    while start < stop and n[start] <= 0:
        start += 1
    while stop > start and n[stop - 1] <= 0:
        stop -= 1
    if start >= stop:
        return [], [], []
    # A minute without data (n = 0) in between is left out by the general path. n holds whole numbers,
    # so the two high bytes of a non-zero value are non-zero: 8 zero bytes in a row mean a 0.0.
    if _ZERO in joined[0][start * 8 : stop * 8]:
        return None
    values = [decode(b[start * 8 : stop * 8]).tolist() for b in joined[1:]]
    times = list(range(first + start * MINUTE_MS, first + stop * MINUTE_MS, MINUTE_MS))
    return times, values, n[start:stop]


def _node_series(
    times: list[int],
    values: list[list[float]],
    samples: Sequence[float],
    interval_ms: int,
    hows: list[str],
) -> tuple[list[int], list[list[float]]]:
    """A node's minutes combined into intervals (as they are for 60 s)."""
    if interval_ms == MINUTE_MS:
        return times, values
    starts, spans = _spans(times, interval_ms)
    # consecutive minutes and whole-minute intervals: all but the first and last interval have k minutes
    consecutive = times[-1] - times[0] == (len(times) - 1) * MINUTE_MS and interval_ms % MINUTE_MS == 0
    k = interval_ms // MINUTE_MS if consecutive else 0
    return starts, [_combine(v, samples, spans, how, k) for v, how in zip(values, hows, strict=True)]


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
    sources = [_sources(m, agg_fn) for m in metrics]
    # sum of a gauge is mean x samples per minute; other columns are read as stored
    weighted = [agg_fn == "sum" and m not in COUNTER_COLUMNS for m in metrics]
    hows = [
        "max" if m in COUNTER_COLUMNS else ("sum" if w else agg_fn)
        for m, w in zip(metrics, weighted, strict=True)
    ]
    cols, packed, wide = fetch(db, job_id, step, nodes, sources, lo, hi)
    index = {c: i for i, c in enumerate(cols[1:])}  # cols[0] is "n"
    interval_ms = interval * 1000
    per_node: list[tuple[str, list[int], list[list[float]]]] = []
    for node in sorted({*packed, *wide}):
        fast = None if node in wide else _whole_hours(cols, packed.get(node, {}), lo, hi)
        samples: Sequence[float]
        if fast is None:
            hours = merge(cols, packed.get(node, {}), wide.get(node, []))
            times, by_col, samples = _node_minutes(hours, cols[1:], lo, hi)
        else:
            times, by_col, samples = fast
        if not times:
            continue
        values = [by_col[index[c]] for c in sources]
        values = [
            [a * k for a, k in zip(v, samples, strict=True)] if w else v
            for v, w in zip(values, weighted, strict=True)
        ]
        times, values = _node_series(times, values, samples, interval_ms, hows)
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
