"""The job page's data for the web interface, in columns: ``GET /ui/api/job/{id}``.

JobMon's ``GET /api/job/{id}`` sends one JSON object per point with an RFC 3339 time: for a 64-node,
24-hour job that is about 190 000 objects (23 MB), most of the page's load time (bench/web_page.py). This
adapter serves the same page from the same service call (``JobService.job_page``, cached for finished
runs) with each metric as one time array and one value array per node: a tenth of the size, and arrays
the charts take as they are. Metadata, summary, findings and steps are JobMon's mapping, unchanged, so
the rules (who may see the job, which run) are exactly the API's.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

import msgspec
from jobpulse.collector.api.common import parse_job_ref
from jobpulse.collector.api.deps import provide_job_service
from jobpulse.collector.api.errors import job_not_found
from jobpulse.collector.api.jobmon import jobdata
from jobpulse.collector.auth.guards import principal_of
from jobpulse.collector.domain.errors import NotFound
from jobpulse.collector.schemas import JobMetadata, MetricData
from jobpulse.collector.services.jobs import JobService
from litestar import Request, Response, get
from litestar.di import Provide


class Series(msgspec.Struct):
    """One metric of the run: ``times`` (epoch seconds) and per node its values at those times (null: none)."""

    GUID: str
    DisplayName: str
    Unit: str
    MaxPerNode: float
    times: list[float]
    nodes: dict[str, list[float | None]]


class WebJobPage(msgspec.Struct):
    Metadata: JobMetadata
    Summary: dict[str, Any] | None
    Findings: list[dict[str, Any]]
    Steps: list[dict[str, Any]]
    SampleInterval: float
    Series: list[Series]


def _short(value: float | None) -> float | None:
    """Six significant digits: what a chart can show, and a third of the JSON of a full double."""
    return None if value is None else float(f"{value:.6g}")


def columns(metric: MetricData, parsed: dict[str, float]) -> Series:
    """A JobMon metric as columns; ``parsed`` caches the time strings (shared by every node and metric)."""

    def epoch(text: str) -> float:
        found = parsed.get(text)
        if found is None:
            found = parsed[text] = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        return found

    per_node = {
        node: {epoch(p["_time"]): p["_value"] for p in points} for node, points in metric.Data.items()
    }
    times = sorted({t for values in per_node.values() for t in values})
    config = metric.Config
    return Series(
        GUID=config.GUID,
        DisplayName=config.DisplayName or config.GUID,
        Unit=config.Unit,
        MaxPerNode=float(config.MaxPerNode or 0),
        times=times,
        nodes={node: [values.get(t) for t in times] for node, values in sorted(per_node.items())},
    )


_KEPT = 64  # pages whose columns are kept: a finished run's page is cached by the job service, so its
_columns: OrderedDict[int, tuple[list[MetricData], list[Series]]] = OrderedDict()  # metric list is reused


def _series_of(metric_data: list[MetricData]) -> list[Series]:
    """The columns of a page's metrics, computed once per metric list the job service hands out (the same
    list object while its cache holds the run; a new one once new samples dropped it)."""
    key = id(metric_data)
    kept = _columns.get(key)
    if kept is not None and kept[0] is metric_data:
        _columns.move_to_end(key)
        return kept[1]
    parsed: dict[str, float] = {}
    series = [columns(m, parsed) for m in metric_data]
    _columns[key] = (metric_data, series)
    while len(_columns) > _KEPT:
        _columns.popitem(last=False)
    return series


@get(
    "/ui/api/job/{job_id:str}",
    include_in_schema=False,
    dependencies={"jobs": Provide(provide_job_service, sync_to_thread=False)},
)
async def web_job_page(
    request: Request[Any, Any, Any], job_id: str, jobs: JobService
) -> Response[WebJobPage]:
    ref = parse_job_ref(job_id)
    try:
        page = await jobs.job_page(principal_of(request), ref)
    except NotFound as exc:
        return job_not_found(request, exc)
    shown = jobdata.job_data(page, "")
    return Response(
        WebJobPage(
            Metadata=shown.Metadata,
            Summary=page.summary,
            Findings=page.findings,
            Steps=[msgspec.to_builtins(s) for s in shown.Steps],
            SampleInterval=page.interval,
            Series=_series_of(page.metric_data),
        )
    )
