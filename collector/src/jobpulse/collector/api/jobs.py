"""GET /api/jobs (filtered, sorted, paginated job list) and GET /api/job/{id} (JobData, CSV export)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

import msgspec
from jobpulse.collector import metric_catalog
from jobpulse.collector.api import jobdata
from jobpulse.collector.api.common import (
    INT64,
    interval_label,
    load_run,
    parse_list,
    parse_range,
    scope_user,
    tick_of,
)
from jobpulse.collector.api.deps import provide_store
from jobpulse.collector.api.jobcache import JobDataCache
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.schemas import JobData, JobListConfig, JobListData, JobTag, MetricData, StepSummary
from jobpulse.collector.store import jobs, samples, series, steps, tags
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.sqlite import SqliteStore
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
    dependencies = {"store": Provide(provide_store, sync_to_thread=False)}
    tags = ["jobs"]
    guards = [requires(Role.USER)]

    @get("/api/jobs", operation_id="listJobs", summary="Jobs matching the filters (users: their own)")
    async def list_jobs(
        self,
        request: Request[Any, Any, Any],
        store: NamedDependency[SqliteStore],
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
        principal = principal_of(request)
        query = jobs.JobQuery(
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
        own = scope_user(principal)
        if own is not None:
            if UserName not in (None, own):
                query.user = "\0nobody"  # asking for someone else's jobs: none of them are visible
            else:
                query.user = own
        sample_interval = interval_label(tick_of(request))

        def run(db: Any) -> JobListData:
            rows, total = jobs.query_jobs(db, query)
            by_run = jobdata.tags_by_run(db, [r["run_id"] for r in rows])
            config = metric_catalog.load(db, sample_interval)
            return JobListData(
                Jobs=[jobdata.job_metadata(r, by_run[r["run_id"]]) for r in rows],
                Config=JobListConfig(
                    RadarChartMetrics=config.RadarChartMetrics,
                    Partitions=config.Partitions,
                    Tags=[JobTag(**t) for t in tags.all_tags(db, own)],
                ),
                Total=total,
                Limit=limit,
                Offset=offset,
            )

        return await store.read(run)

    @get(
        "/api/job/{job_id:str}",
        operation_id="getJob",
        summary="One job: metadata, summary, tags and every metric per node (raw=true: full resolution)",
        responses=None,
    )
    async def get_job(
        self,
        request: Request[Any, Any, Any],
        store: NamedDependency[SqliteStore],
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
        wanted = [n for n in node.split("|") if n] if node else None
        row, scope = await load_run(request, store, job_id, wanted)
        want_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
        if want_csv:
            rows = await store.read(
                lambda db: samples.job_samples(db, scope.job_id, scope.start_ms, scope.end_ms, step)
            )
            rows = [r for r in rows if r["node"] in scope.nodes]
            body = jobdata.samples_csv(rows, JOB_SAMPLE_COLUMNS)
            headers = {"Content-Disposition": f'attachment; filename="job-{job_id}.csv"'}
            return cast(Response[JobData], Response(body, media_type="text/csv", headers=headers))
        tick = tick_of(request)

        cache: JobDataCache = request.app.state.job_cache
        finished = not row["is_running"] and not raw

        def run(db: Any) -> JobData:
            sampling_key = ("sampling", row["run_id"], row["stop_time"])
            measured = cache.get(sampling_key) if finished else None
            if measured is None:
                measured = series.sampling(db, scope)[0] or tick
                if finished:
                    cache.put(sampling_key, scope.job_id, measured)
            intervals, default = jobdata.sample_intervals(row, cast(float, measured))
            interval = sampleInterval or default
            catalog = metric_catalog.load_metrics(db, interval_label(tick))
            key = (
                row["run_id"],
                row["stop_time"],
                interval,
                tuple(wanted or ()),
                step,
                msgspec.json.encode(catalog),
            )
            metric_data = cast(list[MetricData] | None, cache.get(key) if finished else None)
            if metric_data is None:
                metric_data = jobdata.metric_data(db, scope, catalog, interval, raw, step)
                if finished:
                    cache.put(key, scope.job_id, metric_data)
            job_tags = tags.job_tags(db, row["run_id"])
            summary, findings = jobdata.job_summary(db, row["run_id"])
            return JobData(
                Metadata=jobdata.job_metadata(row, job_tags),
                MetricData=metric_data,
                QuantileData=[],
                SampleInterval=0.0 if raw else interval,
                SampleIntervals=intervals,
                Tags=[JobTag(**t) for t in job_tags],
                Summary=summary,
                Findings=findings,
                Steps=[StepSummary(**s) for s in steps.step_summaries(db, scope)],
                Step=step,
            )

        return Response(await store.read(run))
