"""GET /api/jobs (filtered, sorted, paginated job list) and GET /api/job/{id} (JobData, CSV export)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from jobpulse.collector.api import gzipjoin
from jobpulse.collector.api.common import INT64, parse_job_ref, parse_list, parse_range
from jobpulse.collector.api.deps import provide_job_service
from jobpulse.collector.api.errors import job_not_found
from jobpulse.collector.api.jobmon import jobdata
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.domain.errors import NotFound
from jobpulse.collector.domain.jobs import JobQuery
from jobpulse.collector.schemas import JobData, JobListConfig, JobListData
from jobpulse.collector.services.jobs import JobService
from jobpulse.common.validate import JOB_NUMBER_MAX
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter

SortKey = Literal[
    "StartTime",
    "StopTime",
    "Duration",
    "Id",
    "UserName",
    "Account",
    "Partition",
    "State",
    "NumNodes",
    "JobName",
]


class JobsController(Controller):
    dependencies = {"jobs": Provide(provide_job_service, sync_to_thread=False)}
    tags = ["jobs"]
    guards = [requires(Role.USER)]

    @get("/api/jobs", operation_id="listJobs", summary="Jobs matching the filters (users: their own)")
    async def list_jobs(
        self,
        request: Request[Any, Any, Any],
        jobs: NamedDependency[JobService],
        UserName: Annotated[str | None, QueryParameter(name="UserName", max_length=256)] = None,
        UserId: Annotated[int | None, QueryParameter(name="UserId", ge=-INT64, le=INT64)] = None,
        GroupName: Annotated[str | None, QueryParameter(name="GroupName", max_length=256)] = None,
        GroupId: Annotated[int | None, QueryParameter(name="GroupId", ge=-INT64, le=INT64)] = None,
        Account: Annotated[str | None, QueryParameter(name="Account", max_length=256)] = None,
        Partition: Annotated[str | None, QueryParameter(name="Partition", max_length=256)] = None,
        State: Annotated[str | None, QueryParameter(name="State", max_length=64)] = None,
        Node: Annotated[str | None, QueryParameter(name="Node", max_length=256)] = None,
        IsRunning: Annotated[bool | None, QueryParameter(name="IsRunning")] = None,
        ArrayJobId: Annotated[
            int | None,
            QueryParameter(
                name="ArrayJobId", ge=1, le=JOB_NUMBER_MAX, description="the tasks of one job array"
            ),
        ] = None,
        HetJobId: Annotated[
            int | None,
            QueryParameter(
                name="HetJobId",
                ge=1,
                le=JOB_NUMBER_MAX,
                description="the components (123+0, 123+1, ...) of one heterogeneous job",
            ),
        ] = None,
        NumNodes: Annotated[
            str | None, QueryParameter(name="NumNodes", description="range 'from,to'")
        ] = None,
        NumTasks: Annotated[
            str | None, QueryParameter(name="NumTasks", description="range 'from,to'")
        ] = None,
        NumGpus: Annotated[str | None, QueryParameter(name="NumGpus", description="range 'from,to'")] = None,
        Time: Annotated[
            str | None, QueryParameter(name="Time", description="start time range 'from,to', epoch seconds")
        ] = None,
        MinDuration: Annotated[
            int | None, QueryParameter(name="MinDuration", ge=0, le=INT64, description="seconds")
        ] = None,
        MaxDuration: Annotated[
            int | None, QueryParameter(name="MaxDuration", ge=0, le=INT64, description="seconds")
        ] = None,
        Tags: Annotated[
            str | None, QueryParameter(name="Tags", description="tag ids, comma-separated")
        ] = None,
        TagNames: Annotated[
            str | None, QueryParameter(name="TagNames", description="tag names, comma-separated")
        ] = None,
        Findings: Annotated[
            str | None,
            QueryParameter(name="Findings", description="efficiency findings (tags of type 'finding')"),
        ] = None,
        sort: Annotated[SortKey, QueryParameter(name="sort")] = "StartTime",
        order: Annotated[Literal["asc", "desc"], QueryParameter(name="order")] = "desc",
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=10_000)] = 100,
        offset: Annotated[int, QueryParameter(name="offset", ge=0, le=INT64)] = 0,
    ) -> JobListData:
        query = JobQuery(
            user=UserName,
            user_id=UserId,
            group=GroupName,
            group_id=GroupId,
            account=Account,
            partition=Partition,
            state=State,
            node=Node,
            is_running=IsRunning,
            array_job_id=ArrayJobId,
            het_job_id=HetJobId,
            num_nodes=parse_range("NumNodes", NumNodes),
            num_tasks=parse_range("NumTasks", NumTasks),
            num_gpus=parse_range("NumGpus", NumGpus),
            time=parse_range("Time", Time),
            duration=(MinDuration, MaxDuration)
            if MinDuration is not None or MaxDuration is not None
            else None,
            tag_ids=parse_list("Tags", Tags, int),
            tag_names=parse_list("TagNames", TagNames),
            findings=parse_list("Findings", Findings),
            sort=sort,
            descending=order == "desc",
            limit=limit,
            offset=offset,
        )
        found = await jobs.list_jobs(principal_of(request), query)
        listing, config = found.listing, found.config
        return JobListData(
            Jobs=[
                jobdata.job_metadata(r, listing.tags_by_run[r.run_id], found.figures.get(r.run_id))
                for r in listing.rows
            ],
            Config=JobListConfig(
                RadarChartMetrics=config.RadarChartMetrics,
                Partitions=config.Partitions,
                Tags=[jobdata.job_tag(t) for t in listing.tags_in_use],
            ),
            Total=listing.total,
            Limit=limit,
            Offset=offset,
        )

    @get(
        "/api/job/{job_id:str}",
        operation_id="getJob",
        summary="One job: metadata, summary, tags and every metric per node (raw=true: full resolution)",
        responses=None,
        opt={gzipjoin.PRECOMPRESSED: True},  # gzip-compressed here: a cached job's series deflated once
    )
    async def get_job(
        self,
        request: Request[Any, Any, Any],
        jobs: NamedDependency[JobService],
        job_id: Annotated[
            str, PathParameter(description="a job number, an array task 123_4 or a het component 123+1")
        ],
        raw: Annotated[
            bool, QueryParameter(name="raw", description="full resolution; RawData holds CSV")
        ] = False,
        node: Annotated[
            str | None, QueryParameter(name="node", max_length=4096, description="nodes, pipe-separated a|b")
        ] = None,
        sampleInterval: Annotated[
            float | None,
            QueryParameter(
                name="sampleInterval", gt=0, le=jobdata.MAX_SAMPLE_INTERVAL, description="seconds"
            ),
        ] = None,
        step: Annotated[
            str,
            QueryParameter(
                name="step",
                max_length=64,
                pattern=r"^[A-Za-z0-9_.]*$",
                description="a step (batch, extern, 0, 1, ...; see Steps) instead of the whole job",
            ),
        ] = "",
        format: Annotated[
            Literal["json", "csv"] | None,
            QueryParameter(
                name="format", description="csv: a CSV download of every sample (also Accept: text/csv)"
            ),
        ] = None,
    ) -> Response[JobData]:
        principal = principal_of(request)
        ref = parse_job_ref(job_id)
        wanted = [n for n in node.split("|") if n] if node else None
        want_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
        try:
            if want_csv:
                body = await jobs.job_csv(principal, ref, wanted, step)
                headers = {"Content-Disposition": f'attachment; filename="job-{job_id}.csv"'}
                csv_answer = gzipjoin.respond(request, [body.encode()], "text/csv", headers)
                return cast(Response[JobData], csv_answer)
            page = await jobs.job_page(principal, ref, wanted, raw, sampleInterval, step)
        except NotFound as exc:
            return cast(Response[JobData], job_not_found(request, exc))
        # the series' JSON is encoded once per cached page (jobdata.job_data_parts): the same bytes as JobData
        return cast(Response[JobData], gzipjoin.respond(request, jobdata.job_data_parts(page, step)))
