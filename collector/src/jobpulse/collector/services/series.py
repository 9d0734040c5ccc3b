"""Series reads of one run: which interval a chart gets, and the catalogue's metrics at it, per node.

A chart gets about :data:`DEFAULT_MAX_POINTS_PER_JOB` points (JobMon's rule), from the measured sample
interval of the run; every read is bounded to the run (its :class:`~jobpulse.collector.domain.runs.RunScope`)
and goes through the store's named methods. The result is JobMon's MetricData (the shape that the
finished-job cache keeps, so a cached page is served without re-mapping its points) and, from the same
bucketed series, its QuantileData: at each time step, quantiles of the nodes' values.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from jobpulse.collector import metric_catalog
from jobpulse.collector.domain.runs import JobRun, RunScope
from jobpulse.collector.schemas import MetricConfig, MetricData, QuantileData
from jobpulse.collector.store.base import JobStore

DEFAULT_MAX_POINTS_PER_JOB = 200  # as JobMon: a chart gets about this many points
DEFAULT_INTERVALS = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
MAX_SAMPLE_INTERVAL = 7 * 86400.0

Points = dict[str, dict[str, list[tuple[float, float]]]]  # metric -> node -> (time s, value)


def interval_label(seconds: float) -> str:
    """The catalogue's SampleInterval text for a tick (``10s``)."""
    return f"{seconds:g}s"


def sample_intervals(row: JobRun, tick: float) -> tuple[list[float], float]:
    """(the intervals offered, the default) so a chart has about DEFAULT_MAX_POINTS_PER_JOB points;
    JobMon's CalculateSampleIntervals, with the measured tick offered first when finer than 30 s. The
    measured tick is rounded to whole seconds (series are bucketed by whole seconds; a select shows
    ``2``, not ``1.9747608695652175``)."""
    tick = float(max(1, round(tick)))
    stop = time.time() if row.is_running or not row.stop_time else row.stop_time
    duration = max(0.0, float(stop) - float(row.start_time))
    factor = math.ceil(duration / tick / DEFAULT_MAX_POINTS_PER_JOB)
    best = factor * tick
    chosen = tick
    for v in DEFAULT_INTERVALS:
        if abs(v - best) < abs(chosen - best):
            chosen = v
    intervals = [v for v in DEFAULT_INTERVALS if tick <= v <= chosen]
    if not intervals or intervals[0] != tick:
        intervals.insert(0, tick)
    return intervals, chosen


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def points(node: str, series: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """JobMon's QueryResult rows (the keys its Influx queries return)."""
    return [{"_time": rfc3339(ts), "_value": value, "hostname": node} for ts, value in series]


def raw_csv(config: MetricConfig, per_node: dict[str, list[tuple[float, float]]]) -> str:
    """The RawData string: one CSV row per sample (time, node, value), as the export button saves it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["_time", "hostname", "_field", "_value"])
    for node in sorted(per_node):
        for ts, value in per_node[node]:
            writer.writerow([rfc3339(ts), node, config.GUID, repr(value)])
    return out.getvalue()


def samples_csv(rows: list[dict[str, Any]], columns: Iterable[str]) -> str:
    """The full-resolution export of a job: one row per node and sample, every metric a column."""
    cols = list(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "node", *cols])
    for r in rows:
        writer.writerow(
            [rfc3339(r["ts"] / 1000), r["node"], *("" if r[c] is None else repr(r[c]) for c in cols)]
        )
    return out.getvalue()


def quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values, interpolated linearly between the two nearest ranks (the
    estimate of numpy's default and of R's type 7)."""
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def quantiles_across_nodes(
    per_node: dict[str, list[tuple[float, float]]], quantiles: Sequence[str]
) -> dict[str, list[tuple[float, float]]]:
    """Per quantile (JobMon's text, ``"0.25"``), at each time step the quantile of the nodes' values
    at that step: JobMon's Quantile View, computed from the chart's own series."""
    steps: dict[float, list[float]] = {}
    for points in per_node.values():
        for ts, value in points:
            steps.setdefault(ts, []).append(value)
    ordered = [(ts, sorted(values)) for ts, values in sorted(steps.items())]
    return {q: [(ts, quantile(values, float(q))) for ts, values in ordered] for q in quantiles}


def quantile_points(measurement: str, q: str, series: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """JobMon's QuantilePoint rows (``_field`` is the quantile, as its Influx query sets it)."""
    name = f"{measurement}_quant"
    return [{"_time": rfc3339(ts), "_value": v, "_field": q, "_measurement": name} for ts, v in series]


async def metric_data(
    store: JobStore,
    scope: RunScope,
    catalog: list[MetricConfig],
    interval: float,
    raw: bool,
    step: str = "",
    quantiles: Sequence[str] = (),
) -> tuple[list[MetricData], list[QuantileData]]:
    """Every catalogue metric of the run per node: bucketed with its AggFn, or every sample (raw); and,
    per metric, ``quantiles`` across nodes at each step (none when ``quantiles`` is empty or ``raw``).
    Metrics without any point are left out of both."""
    measurements = sorted({m.Measurement for m in catalog})
    result: list[MetricData] = []
    spread: list[QuantileData] = []
    if raw:
        data: Points = {m: {} for m in measurements}
        for r in await store.run_samples(scope, step):
            for m in measurements:
                if r[m] is not None:
                    data[m].setdefault(r["node"], []).append((r["ts"] / 1000, float(r[m])))
    else:
        by_fn: dict[str, Points] = {}
        wanted: dict[str, set[str]] = {}  # one scan per aggregation, of only its metrics
        for entry in catalog:
            fn_name = metric_catalog.normalise_agg(entry.AggFn) or "mean"
            wanted.setdefault(fn_name, set()).add(entry.Measurement)
        for fn, names in wanted.items():
            by_fn[fn] = await store.series_points(scope, sorted(names), interval, fn, step=step)
    for metric in catalog:
        if raw:
            per_node = data[metric.Measurement]
        else:
            per_node = by_fn[metric_catalog.normalise_agg(metric.AggFn) or "mean"][metric.Measurement]
        if not per_node:
            continue
        result.append(
            MetricData(
                Config=metric,
                Data={n: points(n, p) for n, p in per_node.items()},
                RawData=raw_csv(metric, per_node) if raw else "",
            )
        )
        if quantiles and not raw:
            spread.append(
                QuantileData(
                    Config=metric,
                    Quantiles=list(quantiles),
                    Data={
                        q: quantile_points(metric.Measurement, q, series)
                        for q, series in quantiles_across_nodes(per_node, quantiles).items()
                    },
                )
            )
    return result, spread


def with_every_node(metric_data: list[MetricData], nodes: Iterable[str]) -> list[MetricData]:
    """``metric_data`` with an empty series for each of ``nodes`` that has no point yet: a live page
    appends each pushed point to its node's series, which must exist."""
    wanted = list(nodes)
    return [
        MetricData(Config=m.Config, Data={**{n: [] for n in wanted}, **m.Data}, RawData=m.RawData)
        if any(n not in m.Data for n in wanted)
        else m
        for m in metric_data
    ]
