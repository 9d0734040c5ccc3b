"""Turning job runs and pages of the job service into JobMon payloads (the job, metric and list routes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import msgspec
from jobpulse.collector.api.gzipjoin import Part
from jobpulse.collector.domain.jobs import slurm_exit_string
from jobpulse.collector.domain.runs import JobRun
from jobpulse.collector.domain.summaries import StoredSummary
from jobpulse.collector.domain.tags import Tag
from jobpulse.collector.schemas import JobData, JobMetadata, JobMetadataData, JobTag, Node, StepSummary
from jobpulse.collector.services.jobs import JobPage, MetricFigures
from jobpulse.collector.services.page_series import PageSeries, jobmon_metric_data, jobmon_quantile_data
from jobpulse.collector.services.page_series import points as points
from jobpulse.collector.services.page_series import rfc3339 as rfc3339
from jobpulse.collector.services.series import MAX_SAMPLE_INTERVAL as MAX_SAMPLE_INTERVAL


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def job_tag(tag: Tag) -> JobTag:
    """A tag in JobMon's job.JobTag shape."""
    return JobTag(Id=tag.id, Name=tag.name, Type=tag.type, CreatedBy=tag.created_by)


def summary_fields(stored: StoredSummary | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The run's summary and findings as jobpulse's JobData adds them (``Summary``: the stored document,
    null until there is one; ``Findings``: each rule that fired with its value, threshold and hint)."""
    if stored is None:
        return None, []
    return dict(stored.figures), [dataclasses.asdict(f) for f in stored.findings]


def metadata_data(figures: list[MetricFigures] | None) -> list[JobMetadataData] | None:
    """A run's summary figures as JobMon's JobMetadata.Data (null when it has none)."""
    if not figures:
        return None
    return [JobMetadataData(Config=f.config, Mean=f.mean, Max=f.max) for f in figures]


def job_metadata(
    row: JobRun,
    tags: Iterable[Tag] = (),
    figures: list[MetricFigures] | None = None,
    stop_time: int | None = None,
) -> JobMetadata:
    """A run in the JobMetadata shape (JobMon field names, times in epoch seconds; ``stop_time``
    instead of the stored one where given: the job page shows a running job's as now)."""
    nodes = row.nodes
    num_nodes, num_tasks = max(_int(row.num_nodes), len(nodes)), _int(row.num_tasks)
    return JobMetadata(
        Id=row.job_id,
        UserId=_int(row.user_id),
        UserName=row.user_name,
        GroupId=_int(row.group_id),
        GroupName=row.group_name,
        ClusterId=row.cluster,
        NumNodes=num_nodes,
        NumTasks=num_tasks,
        TasksPerNode=_int(row.tasks_per_node) or (num_tasks // num_nodes if num_nodes else 0),
        GPUsPerNode=_int(row.gpus_per_node),
        StartTime=_int(row.start_time),
        StopTime=_int(row.stop_time) if stop_time is None else stop_time,
        IsRunning=row.is_running,
        JobName=row.job_name,
        Account=row.account,
        TTL=0,
        Partition=row.partition,
        JobScript=row.job_script or "",
        ExitCode=_int(row.exit_code),
        Nodes=[Node(Name=n) for n in nodes],
        Tags=[job_tag(t) for t in tags],
        State=row.state,
        NodeList="|".join(nodes),
        Cpus=_int(row.cpus),
        JobIdString=str(row.ref),
        ArrayJobId=row.array_job_id,
        ArrayTaskId=row.array_task_id,
        HetJobId=row.het_job_id,
        HetJobOffset=row.het_job_offset,
        HostList=row.nodelist,
        ExitCodeString=slurm_exit_string(row.exit_code, row.exit_signal),
        Data=metadata_data(figures),
    )


def job_data(page: JobPage, step: str, with_series: bool = True) -> JobData:
    """The job page in JobMon's JobData shape: no data is null, not [] (JobMon's page tests for null).
    ``with_series=False``: MetricData and QuantileData left null (:func:`job_data_parts` adds them)."""
    summary, findings = summary_fields(page.summary)
    return JobData(
        Metadata=job_metadata(page.run, page.tags, page.figures, page.stop_time),
        MetricData=(page.metric_data or None) if with_series else None,
        QuantileData=(page.quantile_data or None) if with_series else None,
        SampleInterval=page.interval,
        SampleIntervals=page.intervals,
        Tags=[job_tag(t) for t in page.tags],
        Summary=summary,
        Findings=findings,
        Steps=[StepSummary(**s) for s in page.steps],
        Step=step,
    )


_SERIES = ("MetricData", "QuantileData")
# JobData with its two series fields taken as JSON already encoded: derived from JobData's own fields, so
# the two cannot drift apart, and msgspec writes the same bytes in the same order as for JobData itself.
_JobDataJson = msgspec.defstruct(
    "JobDataJson",
    [(f.name, msgspec.Raw if f.name in _SERIES else f.type) for f in msgspec.structs.fields(JobData)],
)


def _encoded_series(charted: PageSeries) -> tuple[Part, Part]:
    """MetricData and QuantileData of a page as JSON (null when empty), with their gzip form. Built from
    fresh JobMon shapes that are dropped once encoded: a cached page keeps these bytes, not 190 000 point
    objects as well."""
    return (
        Part(msgspec.json.encode(jobmon_metric_data(charted) or None)),
        Part(msgspec.json.encode(jobmon_quantile_data(charted) or None)),
    )


_SLOT = msgspec.Raw(b"\0")  # where a series goes: JSON never holds a raw NUL byte, so it splits exactly


def job_data_parts(page: JobPage, step: str) -> list[bytes | Part]:
    """:func:`job_data` encoded as JSON, byte for byte, in parts: the series' JSON (with its gzip form) is
    made once per cached page, the rest per request.

    For a finished run the job service hands out the same :class:`PageSeries` while its cache holds the
    run, so a cached ``GET /api/job/{id}`` maps and encodes only metadata, tags, summary and steps (which
    can change: tags) and copies the series' bytes (api/gzipjoin.py). The access check is the service's,
    before its cache.
    """
    metric_json, quantile_json = page.series.derived("jobmon.json", _encoded_series)
    shown = job_data(page, step, with_series=False)
    fields = {f: getattr(shown, f) for f in shown.__struct_fields__}
    encoded = msgspec.json.encode(_JobDataJson(**{**fields, "MetricData": _SLOT, "QuantileData": _SLOT}))
    head, middle, tail = encoded.split(b"\0")
    return [head, metric_json, middle, quantile_json, tail]
