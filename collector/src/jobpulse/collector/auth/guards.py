"""Route guards: role checks and job ownership, in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jobpulse.collector.auth.roles import Principal, Role
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("authentication required")
    return user


def requires(role: Role) -> Guard:
    """A guard admitting principals with ``role`` (admins always pass)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = principal_of(connection)
        if not principal.has(role):
            raise PermissionDeniedException(f"this endpoint needs the {role.value!r} role")

    guard.__name__ = f"requires_{role.name.lower()}"
    return guard
