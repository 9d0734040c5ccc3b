"""GET /api/search/all/{term} ("job:<id>" or "user:<name>", plain text) and JobMon's search page:
GET /api/search/job/{term} (JobMetadata[]), /api/search/tag/{term} (JobTag[]) and, for admins,
/api/search/user/{term} (usernames). As in JobMon, an empty result is ``null``, not ``[]`` (its page
tests for null); users find only their own jobs and the tags on them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from jobpulse.collector.api.deps import provide_job_service
from jobpulse.collector.api.jobmon import jobdata
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.schemas import JobMetadata, JobTag
from jobpulse.collector.services.jobs import JobService
from litestar import Controller, MediaType, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath


def _or_null(items: list[Any]) -> Response[Any]:
    """The items as JSON, or ``null`` when there are none (a None return would be an empty body)."""
    return Response(msgspec.json.encode(items or None), media_type=MediaType.JSON)


class SearchController(Controller):
    dependencies = {"jobs": Provide(provide_job_service, sync_to_thread=False)}
    tags = ["search"]

    @get(
        "/api/search/all/{term:str}",
        operation_id="searchAll",
        guards=[requires(Role.USER)],
        media_type=MediaType.TEXT,
        summary='A job id answers "job:<id>", a username "user:<name>" (users: only their own)',
    )
    async def search_all(
        self, request: Request[Any, Any, Any], jobs: NamedDependency[JobService], term: FromPath[str]
    ) -> str:
        return await jobs.search(principal_of(request), term)

    @get(
        "/api/search/job/{term:str}",
        operation_id="searchJob",
        guards=[requires(Role.USER)],
        summary="Jobs whose id, user, name or account contains the term, newest first (users: their own); "
        "null when none",
    )
    async def search_job(
        self, request: Request[Any, Any, Any], jobs: NamedDependency[JobService], term: FromPath[str]
    ) -> Response[list[JobMetadata] | None]:
        rows, tags = await jobs.search_jobs(principal_of(request), term)
        return _or_null([jobdata.job_metadata(r, tags[r.run_id]) for r in rows])

    @get(
        "/api/search/tag/{term:str}",
        operation_id="searchTag",
        guards=[requires(Role.USER)],
        summary="Tags whose name contains the term (users: those on their jobs); null when none",
    )
    async def search_tag(
        self, request: Request[Any, Any, Any], jobs: NamedDependency[JobService], term: FromPath[str]
    ) -> Response[list[JobTag] | None]:
        return _or_null([jobdata.job_tag(t) for t in await jobs.search_tags(principal_of(request), term)])

    @get(
        "/api/search/user/{term:str}",
        operation_id="searchUser",
        guards=[requires(Role.ADMIN)],
        summary="Usernames containing the term, among users with at least one job; null when none",
    )
    async def search_user(
        self, jobs: NamedDependency[JobService], term: FromPath[str]
    ) -> Response[list[str] | None]:
        return _or_null(await jobs.users_with_jobs(term))
