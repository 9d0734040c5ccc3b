"""Per-user roles: JobMon's ``GET``/``PATCH /api/config/users/{user}`` with its store.UserRoles body."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.auth.security import accounts_of
from jobpulse.collector.domain.errors import InvalidInput
from litestar import Controller, Request, get, patch
from litestar.params import JSONBody, PathParameter

UserPath = PathParameter(min_length=1, max_length=256, description="user name")


class UserRoles(msgspec.Struct):
    """JobMon's store.UserRoles. ``Username`` may be left out of a PATCH body (the URL names the user)."""

    Roles: Annotated[list[str], msgspec.Meta(max_length=8)]
    Username: str | None = None


class UserRolesController(Controller):
    tags = ["administration"]
    guards = [requires(Role.ADMIN)]

    @get("/api/config/users/{user:str}", operation_id="getUserRoles", summary="A user's roles")
    async def get_roles(self, request: Request[Any, Any, Any], user: Annotated[str, UserPath]) -> UserRoles:
        record = await accounts_of(request).get_roles(principal_of(request), user)
        return UserRoles(Username=record.username, Roles=list(record.roles))

    @patch(
        "/api/config/users/{user:str}",
        operation_id="setUserRoles",
        summary="Set a user's roles (creates the user, without a password, when unknown); audit-logged",
    )
    async def set_roles(
        self, request: Request[Any, Any, Any], user: Annotated[str, UserPath], data: JSONBody[UserRoles]
    ) -> UserRoles:
        if data.Username not in (None, "", user):
            raise InvalidInput("Username", f"body names {data.Username!r} but the URL names {user!r}")
        record = await accounts_of(request).set_roles(principal_of(request), user, data.Roles)
        return UserRoles(Username=record.username, Roles=list(record.roles))
