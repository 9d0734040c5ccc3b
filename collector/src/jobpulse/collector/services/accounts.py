"""Accounts: logins, sessions and ws-tickets, API keys and their owners, roles, role requests, the audit log.

The rules of who may hold which credential live here (docs/security.md, "Credentials"):

* a login session comes from a password or an OIDC login; a ws-ticket is made only from a login session
  (never from an API key or another ticket), works on WebSocket routes only and dies with its session;
* an API key acts with its own role only; job-control keys belong to a service principal
  ``service:<name>`` (``service:api`` when none is named), user and admin keys to an existing person who
  holds that role, and work only while they do (checked by the store with the key);
* the last admin cannot lose the admin role (a :class:`Conflict`);
* anyone may ask for a role, but the pending requests are bounded (:class:`Unavailable` when full);
* a failed login never logs a name that is no user (often a password typed into the wrong field).

Administration needs the admin role, checked here for every caller (HTTP guard or not). Each change and
its audit entry, naming ``principal.actor``, are stored in one transaction by the store.
"""

from __future__ import annotations

import logging
import re

from jobpulse.collector.auth.passwords import hash_password, verify_password
from jobpulse.collector.domain.accounts import (
    SERVICE_PREFIX,
    SESSION,
    WS_TICKET,
    ApiKey,
    AuditEntry,
    InvalidUserName,
    KeyOwnerError,
    RoleRequest,
    User,
    check_user_name,
    is_service,
    looks_like_api_key,
    service_principal,
)
from jobpulse.collector.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)
from jobpulse.collector.domain.principals import ALL_ROLES, Principal, Role, unknown_roles
from jobpulse.collector.store.base import AccountStore
from jobpulse.common import validate

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "api"  # the owner of a job-control key that names none (JobMon's settings page)
_OWNER_NAME = re.compile(r"[A-Za-z0-9._@+-]{1,256}\Z")

CLI = Principal(username="cli", roles=frozenset({Role.ADMIN.value}), via="cli")
"""The principal of the collector's command line (run by whoever can open the database)."""

__all__ = [
    "CLI",
    "SESSION",
    "WS_TICKET",
    "AccountService",
    "check_user_name",
    "key_owner",
    "looks_like_api_key",
]


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("this needs the 'admin' role")


def _check_roles(field: str, roles: list[str]) -> None:
    bad = unknown_roles(roles)
    if bad:
        raise InvalidInput(
            field, f"unknown role(s) {', '.join(repr(r) for r in bad)}; use user, admin, job-control, ingest"
        )


def key_owner(role: str, owner: str | None, service: str | None) -> str:
    """The owner of a new ``role`` key: ``service:<name>`` for job-control keys (``service:api`` when none
    is named, so JobMon's settings page, which names nothing, keeps working); a user name, required, for
    the others. Whether that owner may hold the key is checked by the store, with the key.

    Raises:
        InvalidInput: field "owner".
    """
    if owner and service:
        raise InvalidInput("owner", "give owner or service, not both")
    try:
        if service:
            return service_principal(service)
        if owner and is_service(owner):
            return service_principal(owner[len(SERVICE_PREFIX) :])
    except KeyOwnerError as exc:
        raise InvalidInput("owner", str(exc)) from exc
    if owner:
        if not _OWNER_NAME.match(owner):
            raise InvalidInput(
                "owner", "must be 1-256 characters of letters, digits and ._@+- (or service:NAME)"
            )
        return owner
    if role in (Role.JOB_CONTROL, Role.INGEST):
        return service_principal(DEFAULT_SERVICE)
    raise InvalidInput(
        "owner", f"a {role!r} key acts as a person: name them with owner=USER (they must hold the role)"
    )


class AccountService:
    """The accounts rules over an :class:`AccountStore`; one per app (``app.state.accounts``)."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store

    # -- logins and sessions --------------------------------------------------------
    async def login(self, username: str, password: str, client: str) -> User:
        """The user whose password this is.

        Raises:
            Unauthorized: unknown user or wrong password (logged without a name that is no user).
        """
        user = await self.store.get_user(username)
        if not verify_password(user.password_hash if user else None, password) or user is None:
            # A name that is no user is often a password typed into the wrong field: it is never logged
            # (the log reaches admins through WS /api/admin/livelog), only its length is.
            who = validate.safe_for_log(username) if user else f"an unknown name ({len(username)} chars)"
            log.warning("failed login for %s from %s", who, client or "?")
            raise Unauthorized("wrong username or password")
        return user

    async def start_session(self, username: str, ttl_seconds: float) -> str:
        """A new login session's id (after a password or OIDC login)."""
        return await self.store.create_session(username, ttl_seconds)

    async def end_session(self, principal: Principal) -> None:
        """Logout: the principal's session and its ws-tickets end (nothing for an API key)."""
        if principal.session_id:
            await self.store.end_session(principal.session_id)

    async def ws_ticket(self, principal: Principal, ttl_seconds: float) -> str:
        """A ws-ticket's id, made from the principal's login session.

        Raises:
            Forbidden: the principal is not a login session (an API key, a ticket).
        """
        if not principal.interactive or principal.session_id is None:
            raise Forbidden(
                "a ws-ticket is made only from a login session (cookie or session token), not from an API key"
            )
        return await self.store.create_ws_ticket(principal.username, ttl_seconds, principal.session_id)

    async def session_principal(
        self, session_id: str, username: str, token_kind: str, websocket: bool
    ) -> Principal | None:
        """Who a session token acts as, or None when the session is over or the token is used where its
        kind does not work (a ws-ticket outside a WebSocket route)."""
        kind, user = await self.store.session_of(session_id, username)
        if user is None or kind is None or token_kind != kind:
            return None
        if kind == WS_TICKET and not websocket:
            return None
        return Principal(username=user.username, roles=frozenset(user.roles), via=kind, session_id=session_id)

    async def key_principal(self, presented: str) -> tuple[Principal, ApiKey]:
        """Who an API key acts as (its owner, with the key's role only), and the key's record.

        Raises:
            Unauthorized: unknown, expired or revoked, or its owner no longer holds its role.
        """
        record = await self.store.verify_api_key(presented)
        if record is None:
            raise Unauthorized("invalid, expired or revoked API key, or its owner no longer holds its role")
        principal = Principal(
            username=record.owner, roles=frozenset({record.role}), via="api-key", key_id=record.id
        )
        return principal, record

    async def external_login(
        self, username: str, source: str, mapped: list[str], defaults: list[str], email: str, name: str
    ) -> User:
        """The user of an external (OIDC) login, created on first login with the roles the provider maps
        to (else ``defaults``); roles an admin gave are kept, mapped ones added.

        Raises:
            Unauthorized: the name contains ``:`` (reserved for service principals).
        """
        try:
            check_user_name(username)
        except InvalidUserName as exc:
            raise Unauthorized(str(exc)) from exc
        mapped = [r for r in mapped if r in ALL_ROLES]
        defaults = [r for r in defaults if r in ALL_ROLES]

        def roles_for(current: list[str] | None) -> list[str]:
            return sorted(set(current if current is not None else (mapped or defaults)) | set(mapped))

        return await self.store.upsert_external_user(username, source, roles_for, email, name)

    # -- users and roles ----------------------------------------------------------------
    async def get_roles(self, principal: Principal, username: str) -> User:
        """The user, with their roles; NotFound when unknown."""
        _require_admin(principal)
        user = await self.store.get_user(username)
        if user is None:
            raise NotFound(f"user {username!r} not found")
        return user

    async def set_roles(self, principal: Principal, username: str, roles: list[str]) -> User:
        """Set a user's roles (creating them, without a password, when unknown); audit-logged.

        Raises:
            InvalidInput: an unknown role, or a user name that cannot be a login.
            Conflict: it would take the admin role from the last admin.
        """
        _require_admin(principal)
        _check_roles("Roles", roles)
        if ":" in username:
            raise InvalidInput(
                "user", "':' is reserved for service principals (service:NAME), which have no roles"
            )
        roles = sorted(set(roles))

        def check(before: User | None, admins: int) -> None:
            if before is None:  # a new user: a name Unix allows ("\0", "a\0b", "\u202e" are not)
                validate.unix_name(username, "user")
            elif Role.ADMIN in before.roles and Role.ADMIN not in roles and admins <= 1:
                raise Conflict(f"{username!r} is the last admin; make another admin first")

        return await self.store.set_roles(username, roles, principal.actor, check)

    async def add_user(self, principal: Principal, username: str, roles: list[str], password: str) -> User:
        """Create or update a local user with a password (the CLI's add-user); audit-logged."""
        _require_admin(principal)
        _check_roles("roles", roles)
        try:
            check_user_name(username)
        except InvalidUserName as exc:
            raise InvalidInput("username", str(exc)) from exc
        return await self.store.save_user(username, roles, hash_password(password), principal.actor)

    # -- API keys -------------------------------------------------------------------------
    async def create_api_key(
        self,
        principal: Principal,
        role: str,
        owner: str | None = None,
        service: str | None = None,
        name: str = "",
        ttl_seconds: float | None = None,
        audit_name: bool = False,
    ) -> tuple[str, ApiKey]:
        """(the key, shown once; its record). The owner is ``service`` or ``owner`` (see
        :func:`key_owner`); ``audit_name`` adds the key's name to the audit entry.

        Raises:
            InvalidInput: field "role" (unknown) or "owner" (none named, or it cannot own a ``role`` key).
        """
        _require_admin(principal)
        if unknown_roles([role]):
            raise InvalidInput("role", f"unknown role {role!r}; use one of user, admin, job-control")
        chosen = key_owner(role, owner, service)
        detail = {"role": role, "owner": chosen} | ({"name": name} if audit_name else {})
        return await self.store.create_api_key(chosen, role, name, ttl_seconds, principal.actor, detail)

    async def list_api_keys(self, principal: Principal) -> list[ApiKey]:
        _require_admin(principal)
        return await self.store.list_api_keys()

    async def revoke_api_key(self, principal: Principal, key_id: str) -> None:
        """Raises NotFound when the key is unknown or already revoked."""
        _require_admin(principal)
        if not await self.store.revoke_api_key(key_id, principal.actor):
            raise NotFound(f"API key {key_id!r} not found or already revoked")

    # -- audit and role requests --------------------------------------------------------------
    async def audit_log(
        self, principal: Principal, limit: int, offset: int, actor: str | None
    ) -> list[AuditEntry]:
        _require_admin(principal)
        return await self.store.list_audit(limit, offset, actor)

    async def request_roles(self, username: str, roles: list[str], client: str) -> None:
        """Anyone (no principal: the asker has none yet) asks the admins for roles; logged for them.

        Raises:
            InvalidInput: a user name Unix does not allow, or an unknown role.
            Unavailable: too many requests are pending.
        """
        validate.unix_name(username, "Username")
        _check_roles("Roles", roles)
        try:
            request_id, new = await self.store.add_role_request(username, roles, client)
        except Unavailable as exc:
            log.error("role request from %r refused: %s", username, exc.message)
            raise Unavailable(f"{exc.message}; try again later", exc.retry_after) from exc
        log.warning(
            "role request #%d from user %r for roles %s (client %s)%s",
            request_id,
            username,
            roles or ["any"],
            client,
            "" if new else " (repeated)",
        )

    async def role_requests(self, principal: Principal, include_resolved: bool) -> list[RoleRequest]:
        _require_admin(principal)
        return await self.store.list_role_requests(include_resolved)

    async def dismiss_role_request(self, principal: Principal, request_id: int) -> None:
        """Raises NotFound when the request is unknown or already handled."""
        _require_admin(principal)
        if not await self.store.dismiss_role_request(request_id, principal.actor):
            raise NotFound(f"role request {request_id} not found or already handled")
