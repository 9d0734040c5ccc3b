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
from litestar import Request, Response

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
