"""Domain errors as HTTP answers, in one place: the uniform ``{"detail": ...}`` body of every dialect."""

from __future__ import annotations

from typing import Any

from jobpulse.collector.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)
from litestar import MediaType, Request, Response

_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (Forbidden, 403),
    (Unauthorized, 401),
    (InvalidInput, 400),
    (Conflict, 409),
    (Unavailable, 503),
)


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, object]]:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
    body: dict[str, object] = {"detail": exc.message}
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidInput):
        body["errors"] = [{"key": exc.field, "message": exc.reason}]
    if isinstance(exc, Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(body, status_code=status, headers=headers or None)


def job_not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    """A job the caller may not see (missing, or another user's: the same answer) on the routes JobMon's
    job page fetches (GET /api/job/{id}, /api/metric/{id}): 404, as JSON only for a client that asks
    for JSON (``Accept: application/json``), otherwise as plain text.

    Why: JobMon's page parses every answer but a 401/403 as JobData and crashes on any JSON body without
    ``Metadata``; on 401/403 it deletes its login cookie, which logs the user out for following a link.
    JobMon's own backend answers another user's job with a bare 401. A 404 whose body is not JSON keeps
    the user logged in and the page from crashing (it stays on its spinner), and it tells nothing about
    whether the job exists.
    """
    if "application/json" in request.headers.get("accept", ""):
        return domain_error(request, exc)
    return Response(exc.message, status_code=404, media_type=MediaType.TEXT)
