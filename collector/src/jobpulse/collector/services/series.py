"""Series reads of one run: which interval a chart gets, and the catalogue's metrics at it, per node.

A chart gets about :data:`DEFAULT_MAX_POINTS_PER_JOB` points (JobMon's rule), from the measured sample
interval of the run; every read is bounded to the run (its :class:`~jobpulse.collector.domain.runs.RunScope`)
and goes through the store's named methods. The result is a :class:`PageSeries` of (time, value) points
per node and metric, what the finished-job cache keeps; JobMon's MetricData and QuantileData, the web
page's columns and their encoded JSON are built from it when a reader asks (services/page_series.py).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

from jobpulse.collector import metric_catalog
from jobpulse.collector.domain.runs import JobRun, RunScope
from jobpulse.collector.schemas import MetricConfig
from jobpulse.collector.services.page_series import NodePoints, PageSeries, rfc3339
from jobpulse.collector.services.page_series import points as points
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


async def metric_data(
    store: JobStore,
    scope: RunScope,
    catalog: list[MetricConfig],
    interval: float,
    raw: bool,
    step: str = "",
    quantiles: Sequence[str] = (),
) -> PageSeries:
    """Every catalogue metric of the run per node: bucketed with its AggFn, or every sample (raw), with
    the ``quantiles`` across nodes its QuantileData will have (none when empty or ``raw``). Metrics
    without any point are left out. Only the points are computed here; JobMon's shapes of them are built
    when a reader asks for them (services/page_series.py)."""
    measurements = sorted({m.Measurement for m in catalog})
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
    shown: list[tuple[MetricConfig, NodePoints]] = []
    for metric in catalog:
        if raw:
            per_node = data[metric.Measurement]
        else:
            per_node = by_fn[metric_catalog.normalise_agg(metric.AggFn) or "mean"][metric.Measurement]
        if per_node:
            shown.append((metric, per_node))
    return PageSeries(shown, () if raw else quantiles, raw)
