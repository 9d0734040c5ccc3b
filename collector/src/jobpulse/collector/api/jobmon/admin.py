"""Administration: API keys (create, list, revoke), the audit log and role requests.

``POST /api/generateAPIKey`` is JobMon's route; unlike JobMon (which hands out a
never-expiring JWT for a shared "api" user), each key here has one role, an
owner, an optional expiry and can be revoked, and only its SHA-256 digest is
stored. Every change an admin makes is written to the audit log in the same
transaction as the change itself, naming who acted (``key:<id>`` when an API key did).

Owners (issue 14): job-control keys belong to a service principal ``service:<name>`` (default
``service:api``, the key JobMon's settings page asks for); user and admin keys to a named person who
exists and holds that role, and they work only while that person does. The rules and the audit entries
are the accounts service's (services/accounts.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.auth.security import accounts_of
from jobpulse.collector.domain.accounts import ApiKey
from litestar import Controller, MediaType, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter


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


def _key_fields(key: ApiKey) -> dict[str, Any]:
    """An API key's record as this dialect's fields (the same names: the shape admins' scripts read)."""
    return {
        "id": key.id,
        "owner": key.owner,
        "role": key.role,
        "name": key.name,
        "created": key.created,
        "expires": key.expires,
        "revoked": key.revoked,
        "last_used": key.last_used,
    }


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
        key, record = await accounts_of(request).create_api_key(
            principal_of(request),
            chosen_role,
            body.owner or owner,
            body.service or service,
            body.name if body.name is not None else (name or ""),
            body.expires_days * 86400 if body.expires_days else None,
        )
        if "application/json" in request.headers.get("accept", ""):
            return Response(NewApiKey(key=key, **_key_fields(record)))
        return Response(key, media_type=MediaType.TEXT)

    @get("/api/admin/apikeys", operation_id="listApiKeys", summary="All API keys (never their secrets)")
    async def list_api_keys(self, request: Request[Any, Any, Any]) -> list[ApiKeyRecord]:
        rows = await accounts_of(request).list_api_keys(principal_of(request))
        return [ApiKeyRecord(**_key_fields(row)) for row in rows]

    @delete(
        "/api/admin/apikeys/{key_id:str}",
        operation_id="revokeApiKey",
        status_code=204,
        summary="Revoke an API key; it stops working at once",
    )
    async def revoke_api_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> None:
        await accounts_of(request).revoke_api_key(principal_of(request), key_id)

    @get("/api/admin/audit", operation_id="auditLog", summary="Admin actions, newest first")
    async def audit_log(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
        actor: Annotated[str | None, QueryParameter(max_length=256)] = None,
    ) -> list[AuditEntry]:
        rows = await accounts_of(request).audit_log(principal_of(request), limit, offset, actor)
        return [
            AuditEntry(id=e.id, ts=e.ts, actor=e.actor, action=e.action, target=e.target, detail=e.detail)
            for e in rows
        ]

    @get(
        "/api/admin/notifications",
        operation_id="roleRequests",
        summary="Role requests sent with POST /api/notify/admin (pending only unless all=true)",
    )
    async def role_requests(
        self, request: Request[Any, Any, Any], all_: Annotated[bool, QueryParameter(name="all")] = False
    ) -> list[RoleRequest]:
        rows = await accounts_of(request).role_requests(principal_of(request), all_)
        return [
            RoleRequest(
                id=r.id,
                ts=r.ts,
                username=r.username,
                roles=list(r.roles),
                client=r.client,
                resolved=r.resolved,
            )
            for r in rows
        ]

    @delete(
        "/api/admin/notifications/{request_id:int}",
        operation_id="dismissRoleRequest",
        status_code=204,
        summary="Mark a role request as handled without changing roles",
    )
    async def dismiss(
        self, request: Request[Any, Any, Any], request_id: Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
    ) -> None:
        await accounts_of(request).dismiss_role_request(principal_of(request), request_id)
