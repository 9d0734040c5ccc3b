"""GET /api/search/all/{term} ("job:<id>" or "user:<name>", plain text) and GET /api/search/user/{term}."""

from __future__ import annotations

from typing import Any

from jobpulse.collector.api.deps import provide_store
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.store import jobs
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common.validate import InvalidField
from litestar import Controller, MediaType, Request, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath


class SearchController(Controller):
    dependencies = {"store": Provide(provide_store, sync_to_thread=False)}
    tags = ["search"]

    @get(
        "/api/search/all/{term:str}",
        operation_id="searchAll",
        guards=[requires(Role.USER)],
        media_type=MediaType.TEXT,
        summary='A job id answers "job:<id>", a username "user:<name>" (users: only their own)',
    )
    async def search_all(
        self, request: Request[Any, Any, Any], store: NamedDependency[SqliteStore], term: FromPath[str]
    ) -> str:
        principal = principal_of(request)
        term = term.strip()
        try:
            ident: JobId | None = JobId.parse(term)
        except InvalidField:
            ident = None  # not a job id: perhaps a user name
        if ident is not None:
            job = await store.get_job(ident)
            if job is not None and (principal.is_admin or job["user_name"] == principal.username):
                return f"job:{job['job_id']}"
        if principal.is_admin:
            found = await store.read(lambda db: jobs.users_with_jobs(db, term, limit=1000))
            if term in found:
                return f"user:{term}"
        elif term == principal.username:
            return f"user:{term}"
        raise NotFoundException(f"no job or user matches {term!r}")

    @get(
        "/api/search/user/{term:str}",
        operation_id="searchUser",
        guards=[requires(Role.ADMIN)],
        summary="Usernames containing the term, among users with at least one job",
    )
    async def search_user(self, store: NamedDependency[SqliteStore], term: FromPath[str]) -> list[str]:
        return await store.read(lambda db: jobs.users_with_jobs(db, term))
