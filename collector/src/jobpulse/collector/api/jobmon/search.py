"""GET /api/search/all/{term} ("job:<id>" or "user:<name>", plain text) and GET /api/search/user/{term}."""

from __future__ import annotations

from typing import Any

from jobpulse.collector.api.deps import provide_job_service
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.services.jobs import JobService
from litestar import Controller, MediaType, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath


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
        "/api/search/user/{term:str}",
        operation_id="searchUser",
        guards=[requires(Role.ADMIN)],
        summary="Usernames containing the term, among users with at least one job",
    )
    async def search_user(self, jobs: NamedDependency[JobService], term: FromPath[str]) -> list[str]:
        return await jobs.users_with_jobs(term)
