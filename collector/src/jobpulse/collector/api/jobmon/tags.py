"""POST /api/tags/add_tag?job=ID and /api/tags/remove_tag?job=ID (the job's owner or an admin)."""

from __future__ import annotations

from typing import Annotated, Any

from jobpulse.collector.api.deps import provide_job_service
from jobpulse.collector.api.jobmon.jobdata import job_tag
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.schemas import JobTag
from jobpulse.collector.services.jobs import JobService
from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter


class TagsController(Controller):
    dependencies = {"jobs": Provide(provide_job_service, sync_to_thread=False)}
    tags = ["tags"]
    guards = [requires(Role.USER)]

    @post("/api/tags/add_tag", operation_id="addTag", status_code=200, summary="Tag a job")
    async def add_tag(
        self,
        request: Request[Any, Any, Any],
        jobs: NamedDependency[JobService],
        data: JSONBody[JobTag],
        job: Annotated[int, QueryParameter(name="job", ge=0, le=2**63 - 1, description="job id")],
    ) -> JobTag:
        created = await jobs.add_tag(principal_of(request), job, data.Name, data.Type)
        return job_tag(created)

    @post(
        "/api/tags/remove_tag", operation_id="removeTag", status_code=200, summary="Remove a tag from a job"
    )
    async def remove_tag(
        self,
        request: Request[Any, Any, Any],
        jobs: NamedDependency[JobService],
        data: JSONBody[JobTag],
        job: Annotated[int, QueryParameter(name="job", ge=0, le=2**63 - 1, description="job id")],
    ) -> JobTag:
        await jobs.remove_tag(principal_of(request), job, data.Name)
        return data
