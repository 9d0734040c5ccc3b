"""GET /api/metric/{id}: one metric of one job at a chosen aggregation and sample interval."""

from __future__ import annotations

from typing import Annotated, Any, cast

from jobpulse.collector.api.common import parse_job_ref
from jobpulse.collector.api.deps import provide_job_service
from jobpulse.collector.api.errors import job_not_found
from jobpulse.collector.api.jobmon import jobdata
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.domain.errors import NotFound
from jobpulse.collector.schemas import MetricData
from jobpulse.collector.services.jobs import JobService
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter


class MetricsController(Controller):
    dependencies = {"jobs": Provide(provide_job_service, sync_to_thread=False)}
    tags = ["jobs"]
    guards = [requires(Role.USER)]

    @get("/api/metric/{job_id:str}", operation_id="getMetric", summary="One metric of a job, per node")
    async def get_metric(
        self,
        request: Request[Any, Any, Any],
        jobs: NamedDependency[JobService],
        job_id: Annotated[str, PathParameter(description="a job number, array task 123_4 or het 123+1")],
        metric: Annotated[
            str,
            QueryParameter(
                name="metric", min_length=1, max_length=128, description="metric GUID (see /api/config)"
            ),
        ],
        aggFn: Annotated[
            str | None,
            QueryParameter(name="aggFn", max_length=16, description="mean (or avg), min, max, sum"),
        ] = None,
        sampleInterval: Annotated[
            float | None,
            QueryParameter(
                name="sampleInterval", gt=0, le=jobdata.MAX_SAMPLE_INTERVAL, description="seconds"
            ),
        ] = None,
        node: Annotated[
            str | None, QueryParameter(name="node", max_length=4096, description="nodes, pipe-separated a|b")
        ] = None,
    ) -> Response[MetricData]:
        wanted = [n for n in node.split("|") if n] if node else None
        try:
            shown, per_node = await jobs.metric(
                principal_of(request), parse_job_ref(job_id), metric, aggFn, sampleInterval, wanted
            )
        except NotFound as exc:  # the job page fetches this too: as GET /api/job/{id} answers it
            return cast(Response[MetricData], job_not_found(request, exc))
        return Response(MetricData(Config=shown, Data={n: jobdata.points(n, p) for n, p in per_node.items()}))
