"""GET /api/jobs and GET /api/job/{id}: job metadata and measured series."""

from __future__ import annotations

import json
from typing import Any

from jobpulse.collector.api.deps import provide_store
from jobpulse.collector.auth.guards import check_job_access, principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.collector.store.tags import job_tags
from jobpulse.collector.summary import load_summary
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, Parameter


def job_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """A jobs row in the JobMetadata shape (JobMon field names, times in epoch seconds)."""
    return {
        "Id": row["job_id"],
        "UserId": row["user_id"],
        "UserName": row["user_name"],
        "GroupId": row["group_id"],
        "GroupName": row["group_name"],
        "ClusterId": row["cluster"],
        "NumNodes": row["num_nodes"],
        "NumTasks": row["num_tasks"],
        "Cpus": row["cpus"],
        "GPUsPerNode": row["gpus_per_node"],
        "StartTime": row["start_time"],
        "StopTime": row["stop_time"] or 0,
        "IsRunning": bool(row["is_running"]),
        "JobName": row["job_name"],
        "Account": row["account"],
        "Partition": row["partition"],
        "State": row["state"],
        "ExitCode": row["exit_code"],
        "Nodes": [{"Name": n} for n in json.loads(row["nodes"])],
        "NodeList": row["nodelist"],
    }


class JobsController(Controller):
    dependencies = {"store": Provide(provide_store, sync_to_thread=False)}
    tags = ["jobs"]
    guards = [requires(Role.USER)]

    @get("/api/jobs", operation_id="listJobs", summary="Jobs, newest first")
    async def list_jobs(
        self,
        request: Request[Any, Any, Any],
        store: NamedDependency[SqliteStore],
        limit: int = Parameter(default=100, ge=1, le=10_000),
        offset: int = Parameter(default=0, ge=0),
    ) -> dict[str, Any]:
        principal = principal_of(request)
        user = None if principal.is_admin else principal.username
        rows = await store.list_jobs(user=user, limit=limit, offset=offset)
        return {
            "Jobs": [job_metadata(r) for r in rows],
            "Config": {"RadarChartMetrics": [], "Partitions": {}, "Tags": []},
        }

    @get("/api/job/{job_id:int}", operation_id="getJob", summary="One job with its samples per node")
    async def get_job(
        self, request: Request[Any, Any, Any], store: NamedDependency[SqliteStore], job_id: FromPath[int]
    ) -> dict[str, Any]:
        row = check_job_access(principal_of(request), await store.get_job(job_id), job_id)
        samples = await store.job_samples(job_id)
        series: dict[str, dict[str, list[dict[str, Any]]]] = {c: {} for c in JOB_SAMPLE_COLUMNS}
        for sample in samples:
            for column in JOB_SAMPLE_COLUMNS:
                if sample[column] is not None:
                    series[column].setdefault(sample["node"], []).append(
                        {"_time": sample["ts"] / 1000, "_value": sample[column]}
                    )
        cpu_seconds = max(
            ((s["cpu_user_seconds"] or 0) + (s["cpu_system_seconds"] or 0) for s in samples), default=None
        )
        peak = max((s["mem_peak_bytes"] or s["mem_current_bytes"] or 0 for s in samples), default=None)
        stored = await store.read(lambda db: load_summary(db, row["run_id"]))
        tags = await store.read(lambda db: job_tags(db, row["run_id"]))
        findings = stored.pop("findings", []) if stored else []
        return {
            "Metadata": job_metadata(row),
            "Findings": findings,
            "Tags": tags,
            "MetricData": [
                {"Config": {"Guid": c, "Measurement": c}, "Data": series[c]}
                for c in JOB_SAMPLE_COLUMNS
                if series[c]
            ],
            # "Job": the stored summary (summary.JobSummary), null until the job has finished and been summarized.
            "Summary": {
                "CpuSeconds": cpu_seconds,
                "MemPeakBytes": peak,
                "Samples": len(samples),
                "Job": stored,
            },
            "Samples": samples,
        }
