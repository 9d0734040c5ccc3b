"""The accounts section of the storage protocol (store/base.py ``AccountStore``) on SQLite.

``SqliteStore`` inherits this mixin. Each method is one read, or one write transaction on the writer
thread that holds a change together with its audit entry; the SQL is in store/users.py. Errors of the SQL
layer that are the caller's fault leave here as domain errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from jobpulse.collector.domain.accounts import (
    WS_TICKET,
    ApiKey,
    AuditEntry,
    InvalidUserName,
    KeyOwnerError,
    RoleRequest,
    User,
)
from jobpulse.collector.domain.errors import InvalidInput, Unavailable
from jobpulse.collector.store import users

T = TypeVar("T")


def _in_transaction(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    return lambda db: users.in_transaction(db, fn)


class SqliteAccounts:
    """Users, sessions, API keys, role requests and the audit log."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    # -- users ------------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        return await self._read(lambda db: users.get_user(db, username))

    async def count_admins(self) -> int:
        return await self._read(users.count_admins)

    async def save_user(
        self,
        username: str,
        roles: list[str],
        password_hash: str | None,
        actor: str,
        detail: dict[str, Any] | None = None,
    ) -> User:
        def save(db: sqlite3.Connection) -> User:
            user = users.upsert_user(db, username, roles, password_hash)
            users.audit(db, actor, "add_user", username, detail if detail is not None else {"roles": roles})
            return user

        try:
            return await self._write(_in_transaction(save))
        except InvalidUserName as exc:
            raise InvalidInput("username", str(exc)) from exc

    async def save_admin_at_start(self, username: str, roles: list[str], password_hash: str) -> User:
        return await self._write(
            _in_transaction(lambda db: users.upsert_user(db, username, roles, password_hash))
        )

    async def upsert_external_user(
        self,
        username: str,
        source: str,
        roles_for: Callable[[list[str] | None], list[str]],
        email: str = "",
        display_name: str = "",
    ) -> User:
        def upsert(db: sqlite3.Connection) -> User:
            existing = users.get_user(db, username)
            roles = roles_for(list(existing.roles) if existing else None)
            return users.upsert_user(db, username, roles, None, source, email, display_name)

        try:
            return await self._write(_in_transaction(upsert))
        except InvalidUserName as exc:
            raise InvalidInput("username", str(exc)) from exc

    async def set_roles(
        self,
        username: str,
        roles: list[str],
        actor: str,
        check: Callable[[User | None, int], None],
    ) -> User:
        def apply(db: sqlite3.Connection) -> User:
            before = users.get_user(db, username)
            check(before, users.count_admins(db))
            old = sorted(before.roles) if before else []
            record = users.set_roles(db, username, roles)
            users.audit(db, actor, "set_roles", username, {"before": old, "after": roles})
            return record

        try:
            return await self._write(_in_transaction(apply))
        except InvalidUserName as exc:
            raise InvalidInput("user", str(exc)) from exc

    # -- sessions and ws-tickets ----------------------------------------------------
    async def create_session(self, username: str, ttl_seconds: float) -> str:
        return await self._write(lambda db: users.create_session(db, username, ttl_seconds))

    async def create_ws_ticket(self, username: str, ttl_seconds: float, parent: str) -> str:
        return await self._write(
            lambda db: users.create_session(db, username, ttl_seconds, WS_TICKET, parent)
        )

    async def session_of(self, session_id: str, username: str) -> tuple[str | None, User | None]:
        return await self._read(
            lambda db: (users.session_kind(db, session_id, username), users.get_user(db, username))
        )

    async def end_session(self, session_id: str) -> None:
        await self._write(lambda db: users.end_session(db, session_id))

    # -- API keys ---------------------------------------------------------------------
    async def create_api_key(
        self,
        owner: str,
        role: str,
        name: str,
        ttl_seconds: float | None,
        actor: str,
        detail: dict[str, Any],
    ) -> tuple[str, ApiKey]:
        def create(db: sqlite3.Connection) -> tuple[str, ApiKey]:
            key, record = users.create_api_key(db, owner, role, name, ttl_seconds)
            users.audit(db, actor, "create_api_key", record.id, detail)
            return key, record

        try:
            return await self._write(_in_transaction(create))
        except KeyOwnerError as exc:
            raise InvalidInput("owner", str(exc)) from exc

    async def verify_api_key(self, presented: str) -> ApiKey | None:
        record = await self._read(lambda db: users.verify_api_key(db, presented))
        if record is not None:
            key_id = record.id
            await self._write(lambda db: users.touch_api_key(db, key_id))
        return record

    async def list_api_keys(self) -> list[ApiKey]:
        return await self._read(users.list_api_keys)

    async def revoke_api_key(self, key_id: str, actor: str) -> bool:
        def revoke(db: sqlite3.Connection) -> bool:
            done = users.revoke_api_key(db, key_id)
            if done:
                users.audit(db, actor, "revoke_api_key", key_id)
            return done

        return await self._write(_in_transaction(revoke))

    # -- audit and role requests --------------------------------------------------------
    async def list_audit(self, limit: int, offset: int, actor: str | None) -> list[AuditEntry]:
        return await self._read(lambda db: users.list_audit(db, limit, offset, actor))

    async def add_role_request(self, username: str, roles: list[str], client: str) -> tuple[int, bool]:
        try:
            return await self._write(lambda db: users.add_role_request(db, username, roles, client))
        except users.TooManyRequestsPending as exc:
            raise Unavailable(str(exc)) from exc

    async def list_role_requests(self, include_resolved: bool) -> list[RoleRequest]:
        return await self._read(lambda db: users.list_role_requests(db, include_resolved))

    async def dismiss_role_request(self, request_id: int, actor: str) -> bool:
        def resolve(db: sqlite3.Connection) -> bool:
            done = users.resolve_role_request(db, request_id)
            if done:
                users.audit(db, actor, "dismiss_role_request", str(request_id))
            return done

        return await self._write(_in_transaction(resolve))
