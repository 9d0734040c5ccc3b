"""Names of accounts and credentials: plain rules with no I/O, shared by the store and the accounts service.

Who owns a key (issue 14, D1/D9): either a person (a user) or a service principal ``service:<name>``,
which has no user row, cannot log in and owns job-control keys only. User names cannot contain ``:``, so
no login name can be taken for a service principal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

KEY_PREFIX = "jp"
SERVICE_PREFIX = "service:"
SESSION, WS_TICKET = "session", "ws-ticket"  # the kinds of a server-side session
_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")


class InvalidUserName(ValueError):
    """A user name that cannot be a login: ``:`` is reserved for ``service:<name>`` principals."""


class KeyOwnerError(ValueError):
    """The owner named for a new API key cannot own a key of that role; the message says why."""


def check_user_name(username: str) -> str:
    """``username`` if it can be a person's login name.

    Raises:
        InvalidUserName: empty, or it contains ``:`` (reserved for service principals).
    """
    if not username or ":" in username:
        raise InvalidUserName(
            f"user name {username!r} is empty or contains ':', which is reserved for service principals"
        )
    return username


def service_principal(name: str) -> str:
    """``service:<name>`` for a service name (1-64 of a-z, 0-9, '.', '_', '-', starting alphanumeric).

    Raises:
        KeyOwnerError: not a valid service name.
    """
    if not _SERVICE_NAME.match(name):
        raise KeyOwnerError(
            f"service name {name[:80]!r} must be 1-64 characters of a-z, 0-9, '.', '_', '-' "
            "(starting with a letter or digit)"
        )
    return SERVICE_PREFIX + name


def is_service(owner: str) -> bool:
    return owner.startswith(SERVICE_PREFIX)


def looks_like_api_key(value: str) -> bool:
    return value.startswith(f"{KEY_PREFIX}_") and value.count("_") >= 2


@dataclass(frozen=True, slots=True)
class User:
    """A person who can log in (a password, or an external login: ``source`` "oidc") or own keys.

    ``password_hash`` is None for users without a local password; it never leaves the accounts service
    (``repr`` hides it too, so a logged user does not log it).
    """

    username: str
    roles: tuple[str, ...]  # sorted
    source: str = "local"
    email: str = ""
    display_name: str = ""
    created: float = 0.0
    updated: float = 0.0
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's record, never its secret (only a digest is stored; the key is shown once)."""

    id: str
    owner: str  # a user name, or service:<name>
    role: str
    name: str
    created: float
    expires: float | None
    revoked: float | None
    last_used: float | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action: who did what to which target; ``detail`` as the action recorded it (JSON)."""

    id: int
    ts: float
    actor: str
    action: str
    target: str
    detail: Any


@dataclass(frozen=True, slots=True)
class RoleRequest:
    """Someone asked the admins for roles (POST /api/notify/admin); ``resolved`` once handled."""

    id: int
    ts: float
    username: str
    roles: tuple[str, ...]
    client: str
    resolved: float | None
