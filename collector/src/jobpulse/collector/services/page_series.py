"""The charted series of one job page: read and bucketed once, shaped for each reader only when asked.

The job service reads a run's series once per page (services/series.py ``metric_data``) and keeps a
finished run's :class:`PageSeries` in its cache (services/jobcache.py). The readers want different shapes
of the same points: JobMon's MetricData (one JSON object per point with an RFC 3339 time), its
QuantileData (quantiles across nodes at each step), the web page's columns, and the encoded JSON of
JobMon's part. For a 64-node, 24-hour job each of those costs as much as reading the series or more
(the time strings alone took about 1 s of the first view), so none is built until a reader asks for it,
and each is built once per PageSeries: the web page's first view never pays for JobMon's shape, and a
cached JobMon answer is mostly a copy of bytes kept here.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from jobpulse.collector.schemas import MetricConfig, MetricData, QuantileData

T = TypeVar("T")
NodePoints = dict[str, list[tuple[float, float]]]  # node -> (time s, value), time ascending


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def points(
    node: str, series: list[tuple[float, float]], texts: dict[float, str] | None = None
) -> list[dict[str, Any]]:
    """JobMon's QueryResult rows (the keys its Influx queries return). ``texts``: time strings already
    made, shared by every node and metric of a page (they share their interval starts), filled here."""
    if texts is None:
        texts = {}
    out = []
    for ts, value in series:
        text = texts.get(ts)
        if text is None:
            text = texts[ts] = rfc3339(ts)
        out.append({"_time": text, "_value": value, "hostname": node})
    return out


def raw_csv(config: MetricConfig, per_node: dict[str, list[tuple[float, float]]]) -> str:
    """The RawData string: one CSV row per sample (time, node, value), as the export button saves it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["_time", "hostname", "_field", "_value"])
    for node in sorted(per_node):
        for ts, value in per_node[node]:
            writer.writerow([rfc3339(ts), node, config.GUID, repr(value)])
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


def quantile_points(
    measurement: str, q: str, series: list[tuple[float, float]], texts: dict[float, str] | None = None
) -> list[dict[str, Any]]:
    """JobMon's QuantilePoint rows (``_field`` is the quantile, as its Influx query sets it); ``texts`` as
    for :func:`points`."""
    name = f"{measurement}_quant"
    if texts is None:
        texts = {}
    out = []
    for ts, v in series:
        text = texts.get(ts)
        if text is None:
            text = texts[ts] = rfc3339(ts)
        out.append({"_time": text, "_value": v, "_field": q, "_measurement": name})
    return out


class PageSeries:
    """Per catalogue metric with any point, its points per node; ``quantiles`` (JobMon's texts) are those
    its QuantileData has (none for a running run or raw samples); ``raw``: every sample, not bucketed.

    Treat as immutable once built: shapes derived from it are kept with it (:meth:`derived`).
    """

    def __init__(
        self, metrics: list[tuple[MetricConfig, NodePoints]], quantiles: Sequence[str] = (), raw: bool = False
    ) -> None:
        self.metrics = metrics
        self.quantiles = tuple(quantiles)
        self.raw = raw
        self._derived: dict[str, object] = {}

    def derived(self, name: str, build: Callable[[PageSeries], T]) -> T:
        """``build(self)``, computed on the first call for ``name`` and kept with the series: how an
        adapter keeps its own shape of a cached page (two racing first calls both build; either is kept)."""
        found = self._derived.get(name)
        if found is None:
            found = self._derived[name] = build(self)
        return cast(T, found)

    def metric_data(self) -> list[MetricData]:
        """JobMon's MetricData, one per metric (with RawData, the CSV of the samples, for raw pages); kept."""
        return self.derived("jobmon.MetricData", jobmon_metric_data)

    def quantile_data(self) -> list[QuantileData]:
        """JobMon's QuantileData: per metric, each quantile of the nodes' values at each time step; kept."""
        return self.derived("jobmon.QuantileData", jobmon_quantile_data)

    def with_every_node(self, nodes: Iterable[str]) -> PageSeries:
        """These series with an empty one for each of ``nodes`` that has no point yet (first, as JobMon's
        page lists them): a live page appends each pushed point to its node's series, which must exist."""
        wanted = list(nodes)
        metrics = [
            (config, {**{n: [] for n in wanted}, **per_node})
            if any(n not in per_node for n in wanted)
            else (config, per_node)
            for config, per_node in self.metrics
        ]
        return PageSeries(metrics, self.quantiles, self.raw)


def jobmon_metric_data(page: PageSeries) -> list[MetricData]:
    """JobMon's MetricData of ``page``, built anew (:meth:`PageSeries.metric_data` keeps it)."""
    texts: dict[float, str] = {}
    return [
        MetricData(
            Config=config,
            Data={n: points(n, p, texts) for n, p in per_node.items()},
            RawData=raw_csv(config, per_node) if page.raw else "",
        )
        for config, per_node in page.metrics
    ]


def jobmon_quantile_data(page: PageSeries) -> list[QuantileData]:
    """JobMon's QuantileData of ``page``, built anew (:meth:`PageSeries.quantile_data` keeps it)."""
    if not page.quantiles or page.raw:
        return []
    texts: dict[float, str] = {}
    return [
        QuantileData(
            Config=config,
            Quantiles=list(page.quantiles),
            Data={
                q: quantile_points(config.Measurement, q, series, texts)
                for q, series in quantiles_across_nodes(per_node, page.quantiles).items()
            },
        )
        for config, per_node in page.metrics
    ]
