"""POST /api/tags/add_tag?job=ID and /api/tags/remove_tag?job=ID (the job's owner or an admin)."""

from __future__ import annotations

from typing import Annotated, Any

from jobpulse.collector.api.common import load_job
from jobpulse.collector.api.deps import provide_store
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.schemas import JobTag
from jobpulse.collector.store import tags
from jobpulse.collector.store.sqlite import SqliteStore
from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, QueryParameter


class TagsController(Controller):
    dependencies = {"store": Provide(provide_store, sync_to_thread=False)}
    tags = ["tags"]
    guards = [requires(Role.USER)]

    @post("/api/tags/add_tag", operation_id="addTag", status_code=200, summary="Tag a job")
    async def add_tag(
        self,
        request: Request[Any, Any, Any],
        store: NamedDependency[SqliteStore],
        data: JSONBody[JobTag],
        job: Annotated[int, QueryParameter(name="job", ge=0, le=2**63 - 1, description="job id")],
    ) -> JobTag:
        row = await load_job(request, store, job)
        principal = principal_of(request)
        # as JobMon: the tag's Type is the tagger's role, CreatedBy the tagger
        kind = "admin" if principal.is_admin else "user"
        created = await store.write(
            lambda db: tags.add_tag(
                db,
                row["run_id"],
                data.Name,
                data.Type if data.Type == "finding" else kind,
                principal.username,
            )
        )
        return JobTag(**created)

    @post(
        "/api/tags/remove_tag", operation_id="removeTag", status_code=200, summary="Remove a tag from a job"
    )
    async def remove_tag(
        self,
        request: Request[Any, Any, Any],
        store: NamedDependency[SqliteStore],
        data: JSONBody[JobTag],
        job: Annotated[int, QueryParameter(name="job", ge=0, le=2**63 - 1, description="job id")],
    ) -> JobTag:
        row = await load_job(request, store, job)
        removed = await store.write(lambda db: tags.remove_tag(db, row["run_id"], data.Name))
        if not removed:
            raise NotFoundException(f"job {job} has no tag {data.Name!r}")
        return data
