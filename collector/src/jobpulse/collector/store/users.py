"""Users, sessions and API keys. Secrets are stored hashed only.

API keys are 256-bit random secrets, so a fast SHA-256 of the secret is a safe
verifier (nothing to brute-force); passwords, which people choose, use argon2.

Who owns a key (issue 14, D1/D9; the names are domain/accounts.py's): either a person (a row in
``users``) or a service principal ``service:<name>``, which has no row, cannot log in and owns
job-control keys only. A key acts with its own role and nothing more, and a person's key works only
while that person exists and still holds the key's role (admins hold every role): taking a role away
disables that person's keys of that role at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from jobpulse.collector.domain.accounts import (
    KEY_PREFIX,
    SERVICE_PREFIX,
    SESSION,
    WS_TICKET,
    ApiKey,
    AuditEntry,
    KeyOwnerError,
    RoleRequest,
    User,
    check_user_name,
    is_service,
    service_principal,
)
from jobpulse.collector.domain.accounts import InvalidUserName as InvalidUserName  # raised by upsert_user

JOB_CONTROL, ADMIN = "job-control", "admin"
# Roles of scripts, not people: their keys belong to a service principal (ingest: accounting exporters).
SERVICE_ROLES = frozenset({JOB_CONTROL, "ingest"})
T = TypeVar("T")


def _now() -> float:
    return time.time()


# -- users ------------------------------------------------------------------
def get_user(db: sqlite3.Connection, username: str) -> User | None:
    row = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        return None
    return User(
        username=row["username"],
        roles=tuple(sorted(json.loads(row["roles"]))),
        source=row["source"],
        email=row["email"],
        display_name=row["display_name"],
        created=row["created"],
        updated=row["updated"],
        password_hash=row["password_hash"],
    )


def upsert_user(
    db: sqlite3.Connection,
    username: str,
    roles: list[str],
    password_hash: str | None = None,
    source: str = "local",
    email: str = "",
    display_name: str = "",
) -> User:
    """Create the user, or update roles (and the password hash when given).

    Raises:
        InvalidUserName: ``username`` contains ``:`` (reserved for service principals).
    """
    check_user_name(username)
    now = _now()
    db.execute(
        """INSERT INTO users (username, password_hash, roles, source, email, display_name, created, updated)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(username) DO UPDATE SET roles = excluded.roles,
             password_hash = COALESCE(excluded.password_hash, users.password_hash),
             email = CASE WHEN excluded.email != '' THEN excluded.email ELSE users.email END,
             display_name = CASE WHEN excluded.display_name != '' THEN excluded.display_name
                                 ELSE users.display_name END,
             updated = excluded.updated""",
        (username, password_hash, json.dumps(sorted(set(roles))), source, email, display_name, now, now),
    )
    user = get_user(db, username)
    assert user is not None
    return user


def count_admins(db: sqlite3.Connection) -> int:
    return int(
        db.execute(
            "SELECT count(*) FROM users, json_each(users.roles) WHERE json_each.value = 'admin'"
        ).fetchone()[0]
    )


# -- sessions -----------------------------------------------------------------


def create_session(
    db: sqlite3.Connection,
    username: str,
    ttl_seconds: float,
    kind: str = SESSION,
    parent: str | None = None,
) -> str:
    """A server-side session (``kind`` "session": a login) or a WebSocket ticket (``kind`` "ws-ticket",
    which must name the login session it is made from as ``parent`` and never outlives it)."""
    if (kind == WS_TICKET) != (parent is not None):
        raise ValueError("a ws-ticket, and only a ws-ticket, names a parent session")
    session_id = secrets.token_urlsafe(24)
    now = _now()
    expires = now + ttl_seconds
    if parent is not None:
        row = db.execute("SELECT expires FROM sessions WHERE id = ?", (parent,)).fetchone()
        expires = min(expires, row["expires"] if row else now)
    db.execute(
        "INSERT INTO sessions (id, username, kind, created, expires, parent) VALUES (?, ?, ?, ?, ?, ?)",
        (session_id, username, kind, now, expires, parent),
    )
    db.execute("DELETE FROM sessions WHERE expires < ?", (now - 86400,))
    return session_id


def session_kind(db: sqlite3.Connection, session_id: str, username: str) -> str | None:
    """The kind ("session" or "ws-ticket") of a live session of ``username``; None when it is unknown,
    expired or ended. A ws-ticket is live only while its parent session is."""
    now = _now()
    row = db.execute(
        """SELECT s.kind FROM sessions s LEFT JOIN sessions p ON p.id = s.parent
           WHERE s.id = ? AND s.username = ? AND s.expires > ?
             AND (s.kind != 'ws-ticket' OR (p.expires > ? AND p.kind = 'session'))""",
        (session_id, username, now, now),
    ).fetchone()
    return str(row["kind"]) if row is not None else None


def end_session(db: sqlite3.Connection, session_id: str) -> None:
    """End a session and every ws-ticket made from it."""
    db.execute("DELETE FROM sessions WHERE id = ? OR parent = ?", (session_id, session_id))


# -- API keys -------------------------------------------------------------------
_KEY_COLUMNS = "id, owner, role, name, created, expires, revoked, last_used"  # never the digest


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        owner=row["owner"],
        role=row["role"],
        name=row["name"],
        created=row["created"],
        expires=row["expires"],
        revoked=row["revoked"],
        last_used=row["last_used"],
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def owner_holds_role(db: sqlite3.Connection, owner: str, role: str) -> bool:
    """The owner rule: a service principal holds job-control (only); a person holds the roles they have
    now (admins hold every role). A person who no longer exists holds nothing."""
    if is_service(owner):
        return role in SERVICE_ROLES
    user = get_user(db, owner)
    return user is not None and (role in user.roles or ADMIN in user.roles)


def check_key_owner(db: sqlite3.Connection, owner: str, role: str) -> None:
    """Whether ``owner`` may own a new key of ``role``: job-control keys belong to a service principal,
    user and admin keys to an existing person who holds that role.

    Raises:
        KeyOwnerError: with a message naming what is wrong.
    """
    if role in SERVICE_ROLES:
        if not is_service(owner):
            raise KeyOwnerError(
                f"{role} keys belong to a service principal, not to a person ({owner[:80]!r}): "
                "name one as service NAME (owner service:NAME), e.g. service slurm-hooks"
            )
        service_principal(owner[len(SERVICE_PREFIX) :])
        return
    if is_service(owner):
        raise KeyOwnerError(f"service principals own job-control and ingest keys only, not {role!r} keys")
    user = get_user(db, owner)
    if user is None:
        raise KeyOwnerError(f"owner {owner[:80]!r} is not a user; a {role!r} key acts as an existing person")
    if not owner_holds_role(db, owner, role):
        raise KeyOwnerError(f"owner {owner!r} does not hold the {role!r} role (has {list(user.roles)})")


def create_api_key(
    db: sqlite3.Connection, owner: str, role: str, name: str = "", ttl_seconds: float | None = None
) -> tuple[str, ApiKey]:
    """Returns (the key, shown once; its stored record without the secret).

    Raises:
        KeyOwnerError: ``owner`` cannot own a ``role`` key (see :func:`check_key_owner`).
    """
    check_key_owner(db, owner, role)
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = _now()
    expires = now + ttl_seconds if ttl_seconds else None
    db.execute(
        """INSERT INTO api_keys (id, digest, owner, role, name, created, expires, revoked, last_used)
           VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)""",
        (key_id, _digest(secret), owner, role, name, now, expires),
    )
    record = _key(db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone())
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


def verify_api_key(db: sqlite3.Connection, presented: str) -> ApiKey | None:
    """The key's record if the key is known, not revoked, not expired, and its owner still holds its role."""
    try:
        _prefix, key_id, secret = presented.split("_", 2)
    except ValueError:
        return None
    row = db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    if row is None or not hmac.compare_digest(row["digest"], _digest(secret)):
        return None
    if row["revoked"] is not None or (row["expires"] is not None and row["expires"] < _now()):
        return None
    if not owner_holds_role(db, row["owner"], row["role"]):
        return None
    return _key(row)


def touch_api_key(db: sqlite3.Connection, key_id: str) -> None:
    db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (_now(), key_id))


def revoke_api_key(db: sqlite3.Connection, key_id: str) -> bool:
    cur = db.execute("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (_now(), key_id))
    return cur.rowcount > 0


def list_api_keys(db: sqlite3.Connection) -> list[ApiKey]:
    return [_key(row) for row in db.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created")]


# -- audit ----------------------------------------------------------------------
def audit(db: sqlite3.Connection, actor: str, action: str, target: str = "", detail: Any = None) -> None:
    """Admin actions are recorded; the caller commits with its own change."""
    db.execute(
        "INSERT INTO audit_log (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (_now(), actor, action, target, json.dumps(detail) if detail is not None else None),
    )


def list_audit(
    db: sqlite3.Connection, limit: int = 100, offset: int = 0, actor: str | None = None
) -> list[AuditEntry]:
    """Newest first; ``detail`` decoded back from JSON."""
    where, params = ("WHERE actor = ?", [actor]) if actor else ("", [])
    rows = db.execute(
        f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset)
    ).fetchall()
    return [
        AuditEntry(
            id=row["id"],
            ts=row["ts"],
            actor=row["actor"],
            action=row["action"],
            target=row["target"],
            detail=json.loads(row["detail"]) if row["detail"] is not None else None,
        )
        for row in rows
    ]


# -- roles ------------------------------------------------------------------------
def set_roles(db: sqlite3.Connection, username: str, roles: list[str]) -> User:
    """Set a user's roles, creating the user (no password: OIDC or API keys only) when unknown.

    Pending role requests of that user count as answered.
    """
    existing = get_user(db, username)
    source = existing.source if existing else "admin"
    user = upsert_user(db, username, roles, None, source)
    db.execute(
        "UPDATE role_requests SET resolved = ? WHERE username = ? AND resolved IS NULL", (_now(), username)
    )
    return user


# -- role requests (POST /api/notify/admin) ------------------------------------------
MAX_PENDING_REQUESTS = 1000  # anyone may ask, so the table is bounded even across many client addresses


class TooManyRequestsPending(Exception):
    """The admins have MAX_PENDING_REQUESTS unanswered requests; new ones wait until some are handled."""


def add_role_request(
    db: sqlite3.Connection, username: str, roles: list[str], client: str
) -> tuple[int, bool]:
    """Record a request; a repeated pending request from the same user is not stored twice.

    Returns (request id, whether it is new).

    Raises:
        TooManyRequestsPending: the pending list is full.
    """
    row = db.execute(
        "SELECT id FROM role_requests WHERE username = ? AND resolved IS NULL", (username,)
    ).fetchone()
    if row is not None:
        db.execute(
            "UPDATE role_requests SET ts = ?, roles = ?, client = ? WHERE id = ?",
            (_now(), json.dumps(sorted(set(roles))), client, row["id"]),
        )
        return int(row["id"]), False
    pending = db.execute("SELECT count(*) FROM role_requests WHERE resolved IS NULL").fetchone()[0]
    if pending >= MAX_PENDING_REQUESTS:
        raise TooManyRequestsPending(f"{pending} role requests are waiting for the admins")
    cur = db.execute(
        "INSERT INTO role_requests (ts, username, roles, client) VALUES (?, ?, ?, ?)",
        (_now(), username, json.dumps(sorted(set(roles))), client),
    )
    return int(cur.lastrowid or 0), True


def list_role_requests(db: sqlite3.Connection, include_resolved: bool = False) -> list[RoleRequest]:
    where = "" if include_resolved else "WHERE resolved IS NULL"
    return [
        RoleRequest(
            id=row["id"],
            ts=row["ts"],
            username=row["username"],
            roles=tuple(json.loads(row["roles"])),
            client=row["client"],
            resolved=row["resolved"],
        )
        for row in db.execute(f"SELECT * FROM role_requests {where} ORDER BY id DESC LIMIT 1000")
    ]


def resolve_role_request(db: sqlite3.Connection, request_id: int) -> bool:
    cur = db.execute(
        "UPDATE role_requests SET resolved = ? WHERE id = ? AND resolved IS NULL", (_now(), request_id)
    )
    return cur.rowcount > 0


def in_transaction(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` in one transaction, so an admin change and its audit entry land together or not at all."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result
