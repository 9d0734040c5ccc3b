"""The job page's data for the web interface, in columns: ``GET /ui/api/job/{id}``.

JobMon's ``GET /api/job/{id}`` sends one JSON object per point with an RFC 3339 time: for a 64-node,
24-hour job that is about 190 000 objects (23 MB), most of the page's load time (bench/web_page.py). This
adapter serves the same page from the same service call (``JobService.job_page``, cached for finished
runs) with each metric as one time array and one value array per node: a tenth of the size, and arrays
the charts take as they are. The columns are made from the service's points directly (never from JobMon's
time strings, which the page does not need) and kept with a cached page's series. Metadata, summary, findings and steps are JobMon's mapping, unchanged, so
the rules (who may see the job, which run) are exactly the API's.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
from jobpulse.collector.api import gzipjoin
from jobpulse.collector.api.common import parse_job_ref
from jobpulse.collector.api.deps import provide_job_service
from jobpulse.collector.api.errors import job_not_found
from jobpulse.collector.api.gzipjoin import Part
from jobpulse.collector.api.jobmon import jobdata
from jobpulse.collector.auth.guards import principal_of
from jobpulse.collector.domain.errors import NotFound
from jobpulse.collector.schemas import JobMetadata, MetricConfig, StepSummary
from jobpulse.collector.services.jobs import JobService
from jobpulse.collector.services.page_series import NodePoints, PageSeries
from litestar import Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath


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
    Series: msgspec.Raw  # list[Series] as JSON, encoded once per cached page (with its gzip form)


def columns(config: MetricConfig, per_node: NodePoints) -> Series:
    """One metric's points as columns: the union of the nodes' times, and per node its value at each
    (null where it has none). Nodes almost always share their interval starts: then no lookups."""
    # (times, values) per node; a running job's node without a point yet: empty
    split = {node: tuple(zip(*per_node[node], strict=True)) or ((), ()) for node in sorted(per_node)}
    first = next(iter(split.values()), ((), ()))[0]
    nodes: dict[str, list[float | None]]
    if all(tv[0] == first for tv in split.values()):
        times = list(first)
        nodes = {node: list(tv[1]) for node, tv in split.items()}
    else:
        times = sorted({t for tv in split.values() for t in tv[0]})
        nodes = {}
        for node in split:
            values = dict(per_node[node])
            nodes[node] = [values.get(t) for t in times]
    return Series(
        GUID=config.GUID,
        DisplayName=config.DisplayName or config.GUID,
        Unit=config.Unit,
        MaxPerNode=float(config.MaxPerNode or 0),
        times=times,
        nodes=nodes,
    )


def _columns(charted: PageSeries) -> Part:
    """The columns of every metric as JSON, with its gzip form: made once per cached page."""
    return Part(msgspec.json.encode([columns(config, per_node) for config, per_node in charted.metrics]))


_SLOT = msgspec.Raw(b"\0")  # where the series go: JSON never holds a raw NUL byte, so it splits exactly


@get(
    "/ui/api/job/{job_id:str}",
    include_in_schema=False,
    dependencies={"jobs": Provide(provide_job_service, sync_to_thread=False)},
    opt={gzipjoin.PRECOMPRESSED: True},  # gzip-compressed here: a cached page's columns deflated once
)
async def web_job_page(
    request: Request[Any, Any, Any], job_id: FromPath[str], jobs: NamedDependency[JobService]
) -> Response[WebJobPage]:
    ref = parse_job_ref(job_id)
    try:
        page = await jobs.job_page(principal_of(request), ref)
    except NotFound as exc:
        return job_not_found(request, exc)
    summary, findings = jobdata.summary_fields(page.summary)  # JobMon's mapping, without its series
    shown = WebJobPage(
        Metadata=jobdata.job_metadata(page.run, page.tags, page.figures, page.stop_time),
        Summary=summary,
        Findings=findings,
        Steps=[msgspec.to_builtins(StepSummary(**s)) for s in page.steps],
        SampleInterval=page.interval,
        Series=_SLOT,
    )
    head, tail = msgspec.json.encode(shown).split(b"\0")
    series = page.series.derived("web.columns", _columns)  # once per cached page
    return cast(Response[WebJobPage], gzipjoin.respond(request, [head, series, tail]))
