"""Administration: API keys (create, list, revoke), the audit log and role requests.

``POST /api/generateAPIKey`` is JobMon's route; unlike JobMon (which hands out a
never-expiring JWT for a shared "api" user), each key here has one role, an
owner, an optional expiry and can be revoked, and only its SHA-256 digest is
stored. Every change an admin makes is written to the audit log in the same
transaction as the change itself, naming who acted (``key:<id>`` when an API key did).

Owners (issue 14): job-control keys belong to a service principal ``service:<name>`` (default
``service:api``, the key JobMon's settings page asks for); user and admin keys to a named person who
exists and holds that role, and they work only while that person does (store/users.py).
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

import msgspec
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role, unknown_roles
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._@+-]+$")]


class ApiKeyRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Optional body of POST /api/generateAPIKey; each field may instead be a query parameter."""

    role: str | None = None
    name: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    owner: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    service: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    expires_days: Annotated[float, msgspec.Meta(gt=0, le=36500)] | None = None


class ApiKeyRecord(msgspec.Struct):
    id: str
    owner: str
    role: str
    name: str
    created: float
    expires: float | None
    revoked: float | None
    last_used: float | None


class NewApiKey(ApiKeyRecord):
    key: str  # shown only in this answer


class AuditEntry(msgspec.Struct):
    id: int
    ts: float
    actor: str
    action: str
    target: str
    detail: Any


class RoleRequest(msgspec.Struct):
    id: int
    ts: float
    username: str
    roles: list[str]
    client: str
    resolved: float | None


def _store(request: Request[Any, Any, Any]) -> SqliteStore:
    store: SqliteStore = request.app.state.store
    return store


class AdminController(Controller):
    tags = ["administration"]
    guards = [requires(Role.ADMIN)]

    @post(
        "/api/generateAPIKey",
        operation_id="generateAPIKey",
        status_code=200,
        summary="Create an API key (shown once, stored hashed); job-control keys are for Slurm hooks",
        description=(
            "Answers JSON when the request's Accept header names application/json; otherwise the bare key "
            "as text/plain, which is what JobMon's front end reads (and handy for KEY=$(curl ...)). "
            "A job-control key belongs to a service principal (service=NAME, or owner=service:NAME; default "
            "service:api); a user or admin key needs owner=USER, an existing user holding that role, and "
            "works only while they hold it."
        ),
        responses={200: ResponseSpec(NewApiKey, description="The new key (its secret is shown only here)")},
    )
    async def generate_api_key(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ApiKeyRequest | None] = None,
        role: Annotated[str | None, QueryParameter(max_length=32)] = None,
        name: Annotated[str | None, QueryParameter(max_length=256)] = None,
        owner: Annotated[str | None, QueryParameter(max_length=256)] = None,
        service: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> Response[Any]:
        body = data or ApiKeyRequest()
        chosen_role = body.role or role or Role.JOB_CONTROL.value
        if unknown_roles([chosen_role]):
            raise ValidationException(
                f"role: unknown role {chosen_role!r}; use one of user, admin, job-control",
                extra=[{"key": "role", "message": f"unknown role {chosen_role!r}"}],
            )
        actor = principal_of(request).actor
        key_owner = _key_owner(chosen_role, body.owner or owner, body.service or service)
        key_name = body.name if body.name is not None else (name or "")
        ttl = body.expires_days * 86400 if body.expires_days else None

        def create(db: sqlite3.Connection) -> tuple[str, dict[str, Any]]:
            key, record = users.create_api_key(db, key_owner, chosen_role, key_name, ttl)
            users.audit(db, actor, "create_api_key", record["id"], {"role": chosen_role, "owner": key_owner})
            return key, record

        try:
            key, record = await _store(request).write(lambda db: users.in_transaction(db, create))
        except users.KeyOwnerError as exc:
            raise _owner_error(str(exc)) from exc
        if "application/json" in request.headers.get("accept", ""):
            return Response(NewApiKey(key=key, **record))
        return Response(key, media_type=MediaType.TEXT)

    @get("/api/admin/apikeys", operation_id="listApiKeys", summary="All API keys (never their secrets)")
    async def list_api_keys(self, request: Request[Any, Any, Any]) -> list[ApiKeyRecord]:
        rows = await _store(request).read(users.list_api_keys)
        return [ApiKeyRecord(**row) for row in rows]

    @delete(
        "/api/admin/apikeys/{key_id:str}",
        operation_id="revokeApiKey",
        status_code=204,
        summary="Revoke an API key; it stops working at once",
    )
    async def revoke_api_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> None:
        admin = principal_of(request).actor

        def revoke(db: sqlite3.Connection) -> bool:
            done = users.revoke_api_key(db, key_id)
            if done:
                users.audit(db, admin, "revoke_api_key", key_id)
            return done

        if not await _store(request).write(lambda db: users.in_transaction(db, revoke)):
            raise NotFoundException(f"API key {key_id!r} not found or already revoked")

    @get("/api/admin/audit", operation_id="auditLog", summary="Admin actions, newest first")
    async def audit_log(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
        actor: Annotated[str | None, QueryParameter(max_length=256)] = None,
    ) -> list[AuditEntry]:
        rows = await _store(request).read(lambda db: users.list_audit(db, limit, offset, actor))
        return [AuditEntry(**row) for row in rows]

    @get(
        "/api/admin/notifications",
        operation_id="roleRequests",
        summary="Role requests sent with POST /api/notify/admin (pending only unless all=true)",
    )
    async def role_requests(
        self, request: Request[Any, Any, Any], all_: Annotated[bool, QueryParameter(name="all")] = False
    ) -> list[RoleRequest]:
        rows = await _store(request).read(lambda db: users.list_role_requests(db, all_))
        return [RoleRequest(**row) for row in rows]

    @delete(
        "/api/admin/notifications/{request_id:int}",
        operation_id="dismissRoleRequest",
        status_code=204,
        summary="Mark a role request as handled without changing roles",
    )
    async def dismiss(
        self, request: Request[Any, Any, Any], request_id: Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
    ) -> None:
        admin = principal_of(request).actor

        def resolve(db: sqlite3.Connection) -> bool:
            done = users.resolve_role_request(db, request_id)
            if done:
                users.audit(db, admin, "dismiss_role_request", str(request_id))
            return done

        if not await _store(request).write(lambda db: users.in_transaction(db, resolve)):
            raise NotFoundException(f"role request {request_id} not found or already handled")


def _owner_error(message: str) -> ValidationException:
    return ValidationException(f"owner: {message}", extra=[{"key": "owner", "message": message}])


def _key_owner(role: str, owner: str | None, service: str | None) -> str:
    """The new key's owner: ``service:<name>`` for job-control keys (``service:api`` when none is named, so
    JobMon's settings page, which names nothing, keeps working); a user name, required, for the others."""
    if owner and service:
        raise _owner_error("give owner or service, not both")
    try:
        if service:
            return users.service_principal(service)
        if owner and users.is_service(owner):
            return users.service_principal(owner[len(users.SERVICE_PREFIX) :])
    except users.KeyOwnerError as exc:
        raise _owner_error(str(exc)) from exc
    if owner:
        if not msgspec_valid_name(owner):
            raise _owner_error("must be 1-256 characters of letters, digits and ._@+- (or service:NAME)")
        return owner
    if role == Role.JOB_CONTROL:
        return users.service_principal("api")
    raise _owner_error(
        f"a {role!r} key acts as a person: name them with owner=USER (they must hold the role)"
    )


def msgspec_valid_name(value: str) -> bool:
    try:
        msgspec.convert(value, Name)
    except msgspec.ValidationError:
        return False
    return True
