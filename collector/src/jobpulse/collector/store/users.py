"""Users, sessions and API keys. Secrets are stored hashed only.

API keys are 256-bit random secrets, so a fast SHA-256 of the secret is a safe
verifier (nothing to brute-force); passwords, which people choose, use argon2.
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

KEY_PREFIX = "jp"
T = TypeVar("T")


def _now() -> float:
    return time.time()


# -- users ------------------------------------------------------------------
def get_user(db: sqlite3.Connection, username: str) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        return None
    user = dict(row)
    user["roles"] = json.loads(user["roles"])
    return user


def upsert_user(
    db: sqlite3.Connection,
    username: str,
    roles: list[str],
    password_hash: str | None = None,
    source: str = "local",
    email: str = "",
    display_name: str = "",
) -> dict[str, Any]:
    """Create the user, or update roles (and the password hash when given)."""
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
def create_session(db: sqlite3.Connection, username: str, ttl_seconds: float, kind: str = "session") -> str:
    session_id = secrets.token_urlsafe(24)
    now = _now()
    db.execute(
        "INSERT INTO sessions (id, username, kind, created, expires) VALUES (?, ?, ?, ?, ?)",
        (session_id, username, kind, now, now + ttl_seconds),
    )
    db.execute("DELETE FROM sessions WHERE expires < ?", (now - 86400,))
    return session_id


def session_valid(db: sqlite3.Connection, session_id: str, username: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM sessions WHERE id = ? AND username = ? AND expires > ?", (session_id, username, _now())
    ).fetchone()
    return row is not None


def end_session(db: sqlite3.Connection, session_id: str) -> None:
    db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


# -- API keys -------------------------------------------------------------------
def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    db: sqlite3.Connection, owner: str, role: str, name: str = "", ttl_seconds: float | None = None
) -> tuple[str, dict[str, Any]]:
    """Returns (the key, shown once; its stored record without the secret)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = _now()
    expires = now + ttl_seconds if ttl_seconds else None
    db.execute(
        """INSERT INTO api_keys (id, digest, owner, role, name, created, expires, revoked, last_used)
           VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)""",
        (key_id, _digest(secret), owner, role, name, now, expires),
    )
    record = dict(db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone())
    record.pop("digest")
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


def looks_like_api_key(value: str) -> bool:
    return value.startswith(f"{KEY_PREFIX}_") and value.count("_") >= 2


def verify_api_key(db: sqlite3.Connection, presented: str) -> dict[str, Any] | None:
    """The key's record if the key is known, not revoked and not expired."""
    try:
        _prefix, key_id, secret = presented.split("_", 2)
    except ValueError:
        return None
    row = db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    if row is None or not hmac.compare_digest(row["digest"], _digest(secret)):
        return None
    if row["revoked"] is not None or (row["expires"] is not None and row["expires"] < _now()):
        return None
    record = dict(row)
    record.pop("digest")
    return record


def touch_api_key(db: sqlite3.Connection, key_id: str) -> None:
    db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (_now(), key_id))


def revoke_api_key(db: sqlite3.Connection, key_id: str) -> bool:
    cur = db.execute("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (_now(), key_id))
    return cur.rowcount > 0


def list_api_keys(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in dict(row).items() if k != "digest"}
        for row in db.execute("SELECT * FROM api_keys ORDER BY created")
    ]


# -- audit ----------------------------------------------------------------------
def audit(db: sqlite3.Connection, actor: str, action: str, target: str = "", detail: Any = None) -> None:
    """Admin actions are recorded; the caller commits with its own change."""
    db.execute(
        "INSERT INTO audit_log (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (_now(), actor, action, target, json.dumps(detail) if detail is not None else None),
    )


def list_audit(
    db: sqlite3.Connection, limit: int = 100, offset: int = 0, actor: str | None = None
) -> list[dict[str, Any]]:
    """Newest first; ``detail`` decoded back from JSON."""
    where, params = ("WHERE actor = ?", [actor]) if actor else ("", [])
    rows = db.execute(
        f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset)
    ).fetchall()
    out = []
    for row in rows:
        entry = dict(row)
        entry["detail"] = json.loads(entry["detail"]) if entry["detail"] is not None else None
        out.append(entry)
    return out


# -- roles ------------------------------------------------------------------------
def set_roles(db: sqlite3.Connection, username: str, roles: list[str]) -> dict[str, Any]:
    """Set a user's roles, creating the user (no password: OIDC or API keys only) when unknown.

    Pending role requests of that user count as answered.
    """
    existing = get_user(db, username)
    source = existing["source"] if existing else "admin"
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


def list_role_requests(db: sqlite3.Connection, include_resolved: bool = False) -> list[dict[str, Any]]:
    where = "" if include_resolved else "WHERE resolved IS NULL"
    out = []
    for row in db.execute(f"SELECT * FROM role_requests {where} ORDER BY id DESC LIMIT 1000"):
        entry = dict(row)
        entry["roles"] = json.loads(entry["roles"])
        out.append(entry)
    return out


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
