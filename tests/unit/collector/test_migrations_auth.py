"""Auth migrations apply to a database written by an older version, keeping its data: role requests (v4),
credential kinds (v8: ws-tickets name their session, job-control keys move to service principals)."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from pathlib import Path

import pytest
from jobpulse.collector.store import users
from jobpulse.collector.store.migrations import LATEST, current_version, migrate
from jobpulse.collector.store.sqlite import connect


def _old_key(db: sqlite3.Connection, owner: str, role: str, name: str = "") -> str:
    """A key row as versions before v8 wrote it (any owner)."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO api_keys (id, digest, owner, role, name, created) VALUES (?, ?, ?, ?, ?, ?)",
        (key_id, hashlib.sha256(secret.encode()).hexdigest(), owner, role, name, time.time()),
    )
    return f"jp_{key_id}_{secret}"


def test_v2_database_upgrades_with_users_and_keys_intact(tmp_path: Path) -> None:
    db = connect(tmp_path / "old.db")
    assert migrate(db, target=2) == 2
    db.execute(
        "INSERT INTO users (username, password_hash, roles, created, updated) VALUES (?, 'hash', ?, 0, 0)",
        ("alice", '["user"]'),
    )
    db.execute(
        "INSERT INTO users (username, password_hash, roles, created, updated) VALUES (?, 'hash', ?, 0, 0)",
        ("admin", '["admin", "user"]'),
    )
    jobmon_key = _old_key(db, "api", "job-control")  # POST /api/generateAPIKey's old default
    hook_key = _old_key(db, "admin", "job-control", "slurm-hooks")  # the README's old CLI command
    odd_key = _old_key(db, "admin", "job-control", "Slurm Hooks!")
    alice_key = _old_key(db, "alice", "user")
    assert migrate(db) == LATEST == current_version(db)
    assert users.get_user(db, "alice").roles == ("user",)  # type: ignore[union-attr]
    owners = {k: users.verify_api_key(db, k).owner for k in (jobmon_key, hook_key, odd_key, alice_key)}  # type: ignore[union-attr]
    assert owners == {
        jobmon_key: "service:api",
        hook_key: "service:slurm-hooks",
        odd_key: "service:admin",
        alice_key: "alice",  # a person's key of a role they hold is left alone
    }
    moved = [e for e in users.list_audit(db) if e.action == "move_api_key_to_service"]
    assert len(moved) == 3 and {e.actor for e in moved} == {"migration"}
    request_id, new = users.add_role_request(db, "bob", ["user"], "127.0.0.1")
    assert new and users.list_role_requests(db)[0].id == request_id


def test_pending_role_requests_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = connect(tmp_path / "db")
    migrate(db)
    monkeypatch.setattr(users, "MAX_PENDING_REQUESTS", 3)
    for i in range(3):
        users.add_role_request(db, f"u{i}", [], "")
    users.add_role_request(db, "u0", ["user"], "")  # a repeat updates, it does not count again
    with pytest.raises(users.TooManyRequestsPending):
        users.add_role_request(db, "u9", [], "")
    users.resolve_role_request(db, users.list_role_requests(db)[0].id)
    users.add_role_request(db, "u9", [], "")  # room again once the admins answer
