"""Per-user roles: JobMon's ``GET``/``PATCH /api/config/users/{user}`` with its store.UserRoles body."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

import msgspec
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role, unknown_roles
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common import validate
from litestar import Controller, Request, get, patch
from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_409_CONFLICT

UserPath = PathParameter(min_length=1, max_length=256, description="user name")


class UserRoles(msgspec.Struct, forbid_unknown_fields=True):
    """JobMon's store.UserRoles. ``Username`` may be left out of a PATCH body (the URL names the user)."""

    Roles: Annotated[list[str], msgspec.Meta(max_length=8)]
    Username: str | None = None


def _store(request: Request[Any, Any, Any]) -> SqliteStore:
    store: SqliteStore = request.app.state.store
    return store


class ConflictException(ClientException):
    status_code = HTTP_409_CONFLICT


class UserRolesController(Controller):
    tags = ["administration"]
    guards = [requires(Role.ADMIN)]

    @get("/api/config/users/{user:str}", operation_id="getUserRoles", summary="A user's roles")
    async def get_roles(self, request: Request[Any, Any, Any], user: Annotated[str, UserPath]) -> UserRoles:
        record = await _store(request).read(lambda db: users.get_user(db, user))
        if record is None:
            raise NotFoundException(f"user {user!r} not found")
        return UserRoles(Username=record["username"], Roles=record["roles"])

    @patch(
        "/api/config/users/{user:str}",
        operation_id="setUserRoles",
        summary="Set a user's roles (creates the user, without a password, when unknown); audit-logged",
    )
    async def set_roles(
        self, request: Request[Any, Any, Any], user: Annotated[str, UserPath], data: JSONBody[UserRoles]
    ) -> UserRoles:
        if data.Username not in (None, "", user):
            raise ValidationException(
                f"Username: body names {data.Username!r} but the URL names {user!r}",
                extra=[{"key": "Username", "message": "must match the user in the URL"}],
            )
        bad = unknown_roles(data.Roles)
        if bad:
            raise ValidationException(
                f"Roles: unknown role(s) {', '.join(repr(r) for r in bad)}; use user, admin, job-control",
                extra=[{"key": "Roles", "message": f"unknown role(s) {bad}"}],
            )
        if ":" in user:
            raise ValidationException(
                "user: ':' is reserved for service principals (service:NAME), which have no roles",
                extra=[{"key": "user", "message": "contains ':'"}],
            )
        admin = principal_of(request).actor
        roles = sorted(set(data.Roles))

        def apply(db: sqlite3.Connection) -> dict[str, Any]:
            before = users.get_user(db, user)
            if before is None:  # a new user: a name Unix allows ("\0", "a\0b", "\u202e" are not)
                validate.unix_name(user, "user")
            old = sorted(before["roles"]) if before else []
            if Role.ADMIN in old and Role.ADMIN not in roles and users.count_admins(db) <= 1:
                raise ConflictException(f"{user!r} is the last admin; make another admin first")
            record = users.set_roles(db, user, roles)
            users.audit(db, admin, "set_roles", user, {"before": old, "after": roles})
            return record

        record = await _store(request).write(lambda db: users.in_transaction(db, apply))
        return UserRoles(Username=record["username"], Roles=record["roles"])
