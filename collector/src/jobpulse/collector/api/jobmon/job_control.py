"""PUT /api/job_start, PATCH /api/job_stop/{id} (role job-control) and POST /api/admin/refresh_metadata/{id}.

The bodies are JobMon's job.JobMetadata and job.StopJob with their Go field
names, read as Go reads them (``body.py``: any key case, unknown keys ignored, any Content-Type), so
JobMon's Slurm script (camelCase keys, ``nodeList: "n1|n2"``, ``projectId``, sent as a form) calls
jobpulse unchanged. Both calls are idempotent (see store.jobs.record_start/record_stop): Slurm retries
and duplicate hooks must never create or overwrite runs.

A job-control principal reads nothing (issue 14, D4): it gets ``{"Id": <its job>}`` back with the 200
(JobMon answers an empty body and ``Success``; its Slurm script checks the status only), never the stored
job. Admins get the job's ``JobMetadata``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import msgspec
from jobpulse.collector.api.deps import provide_job_service
from jobpulse.collector.api.jobmon.jobdata import job_metadata as _job_metadata
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.domain import hostnames
from jobpulse.collector.domain.jobs import JobFacts
from jobpulse.collector.domain.runs import JobRun
from jobpulse.collector.services.jobs import JobService
from jobpulse.common import validate
from litestar import Controller, Request, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

MAX_BODY = 256 * 1024  # a job script can be long, but not this long


def job_metadata(row: JobRun) -> dict[str, Any]:
    """The stored run as JobMon's job.JobMetadata."""
    doc: dict[str, Any] = msgspec.to_builtins(_job_metadata(row))
    return doc


# Every integer is bounded to what it means (and so to SQLite's 64-bit range): a 2**64 user id or a
# 2**70 exit code is a 400 naming the field, never an OverflowError (500) in the database driver.
JobNumber = Annotated[int, msgspec.Meta(ge=1, le=validate.JOB_NUMBER_MAX)]
UnixId = Annotated[int, msgspec.Meta(ge=0, le=validate.UNIX_ID_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=validate.UINT32_MAX)]
Epoch = Annotated[int, msgspec.Meta(ge=0, le=validate.EPOCH_SECONDS_MAX)]
# Slurm's exit code is a wait status (exit code and signal, 0..65535); scripts also send -1 for unknown.
ExitCode = Annotated[int, msgspec.Meta(ge=-validate.INT32_MAX - 1, le=validate.INT32_MAX)]
Label = Annotated[str, msgspec.Meta(max_length=1024)]


class Node(msgspec.Struct):
    Id: Count = 0
    Name: Annotated[str, msgspec.Meta(max_length=255)] = ""


class JobMetadata(msgspec.Struct):
    """JobMon's job.JobMetadata (Go default JSON names). Only Id is required.

    ``NodeList`` is how JobMon's Slurm script names the nodes: ``"node01|node02"``; each part may also be
    a Slurm hostlist (``node[01-04],gpu7``). ``Nodes`` and ``NodeList`` together make the job's nodes.
    ``JobScript`` is kept and shown as the job's ``JobScript``."""

    Id: JobNumber
    UserId: UnixId = 0
    UserName: Label = ""
    GroupId: UnixId = 0
    GroupName: Label = ""
    ClusterId: Label = ""
    NumNodes: Count = 0
    NumTasks: Count = 0
    TasksPerNode: Count = 0
    GPUsPerNode: Count = 0
    StartTime: Epoch = 0
    StopTime: Epoch = 0
    IsRunning: bool = True
    JobName: Label = ""
    Account: Label = ""
    TTL: Annotated[int, msgspec.Meta(ge=0, le=validate.INT64_MAX)] = 0
    Partition: Label = ""
    JobScript: str = ""
    ExitCode: ExitCode | None = None
    Nodes: list[Node] = msgspec.field(default_factory=list)
    NodeList: str = ""
    Tags: list[dict[str, Any]] = msgspec.field(default_factory=list)
    Data: dict[str, Any] | None = None


class StopJob(msgspec.Struct):
    """JobMon's job.StopJob."""

    ExitCode: ExitCode = 0
    StopTime: Epoch = 0


def _bad(field: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=400, detail=f"{field}: {message}", extra=[{"key": field, "message": message}]
    )


def _check_id(job_id: int | str, field: str = "Id") -> int:
    """A Slurm job number (ASCII digits when from the path: ``²`` and ``٣`` are not job 2 and 3)."""
    try:
        return validate.job_number(job_id, field)
    except validate.InvalidField as exc:
        raise _bad(field, exc.reason) from None


def _check_time(value: int, field: str) -> int:
    if value < 0 or value > validate.EPOCH_SECONDS_MAX:
        raise _bad(field, "must be seconds since the epoch")
    return value


def _check_names(data: JobMetadata) -> None:
    """Names as Unix and Slurm allow them; free text without control characters (it reaches logs)."""
    try:
        for name, field in ((data.UserName, "UserName"), (data.GroupName, "GroupName")):
            if name:
                validate.unix_name(name, field)
        for text, field in (
            (data.ClusterId, "ClusterId"),
            (data.JobName, "JobName"),
            (data.Account, "Account"),
            (data.Partition, "Partition"),
        ):
            validate.text(text, field)
        for i, node in enumerate(data.Nodes):
            if node.Name:
                validate.node_name(node.Name, f"Nodes[{i}].Name")
        for part in _node_list(data.NodeList):
            validate.hostlist(part, "NodeList")
    except validate.InvalidField as exc:
        raise _bad(exc.field, exc.reason) from None


def _node_list(text: str) -> list[str]:
    """JobMon's ``NodeList``: names joined by ``|`` (its Slurm script), or Slurm hostlists."""
    return [part.strip() for part in text.split("|") if part.strip()]


def _facts(data: JSONBody[JobMetadata]) -> JobFacts:
    """JobMon's job start as JobFacts (the store maps every source's facts the same way)."""
    nodes = (*(n.Name for n in data.Nodes if n.Name), *_node_list(data.NodeList))
    return JobFacts(
        user_name=data.UserName,
        user_id=data.UserId if data.UserName or data.UserId else None,
        group_name=data.GroupName,
        group_id=data.GroupId if data.GroupName or data.GroupId else None,
        account=data.Account,
        partition=data.Partition,
        job_name=data.JobName,
        nodes=nodes,
        num_nodes=data.NumNodes or len(hostnames.expand_all(nodes)),
        num_tasks=data.NumTasks,
        tasks_per_node=data.TasksPerNode,
        gpus_per_node=data.GPUsPerNode,
        job_script=data.JobScript,
    )


class JobControlController(Controller):
    dependencies = {"jobs": Provide(provide_job_service, sync_to_thread=False)}
    tags = ["job-control"]
    request_max_body_size = MAX_BODY

    @put(
        "/api/job_start",
        operation_id="jobStart",
        summary="A job started (Slurm prolog)",
        guards=[requires(Role.JOB_CONTROL)],
        status_code=200,
    )
    async def job_start(
        self,
        request: Request[Any, Any, Any],
        jobs: NamedDependency[JobService],
        data: JSONBody[JobMetadata],
    ) -> dict[str, Any]:
        job_id = _check_id(data.Id)
        _check_names(data)
        start = _check_time(data.StartTime, "StartTime") or int(time.time())
        stop = _check_time(data.StopTime, "StopTime")
        row = await jobs.start_job(
            data.ClusterId or None,
            job_id,
            start,
            _facts(data),
            stop=stop if not data.IsRunning else 0,
            exit_code=data.ExitCode,
        )
        return _answer(request, job_id, row)

    @patch(
        "/api/job_stop/{job_id:str}",
        operation_id="jobStop",
        summary="A job ended (Slurm epilog)",
        guards=[requires(Role.JOB_CONTROL)],
    )
    async def job_stop(
        self,
        request: Request[Any, Any, Any],
        jobs: NamedDependency[JobService],
        job_id: FromPath[str],
        data: JSONBody[StopJob],
    ) -> dict[str, Any]:
        number = _check_id(job_id, "id")
        stop = _check_time(data.StopTime, "StopTime") or int(time.time())
        return _answer(request, number, await jobs.stop_job(number, stop, data.ExitCode))

    @post(
        "/api/admin/refresh_metadata/{job_id:int}",
        operation_id="refreshMetadata",
        summary="Re-read a job from Slurm",
        guards=[requires(Role.ADMIN)],
        status_code=200,
        responses={
            HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(
                data_container=None,
                description="Slurm cannot be asked: no Slurm client (sacct/squeue) on the collector "
                "host, or it failed or timed out",
            )
        },
    )
    async def refresh_metadata(
        self, jobs: NamedDependency[JobService], job_id: FromPath[int]
    ) -> dict[str, Any]:
        _check_id(job_id, "id")
        return job_metadata(await jobs.refresh_job(job_id))


def _answer(request: Request[Any, Any, Any], job_id: int, row: JobRun) -> dict[str, Any]:
    """The stored job for admins; only the job number the caller sent for job-control (it reads nothing)."""
    return job_metadata(row) if principal_of(request).is_admin else {"Id": job_id}
