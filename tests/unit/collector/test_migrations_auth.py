"""Migration 3 (role requests) applies to a database written by the previous version, keeping its data."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobpulse.collector.store import users
from jobpulse.collector.store.migrations import LATEST, current_version, migrate
from jobpulse.collector.store.sqlite import connect


def test_v2_database_upgrades_with_users_and_keys_intact(tmp_path: Path) -> None:
    db = connect(tmp_path / "old.db")
    assert migrate(db, target=2) == 2
    users.upsert_user(db, "alice", ["user"], "hash")
    key, _record = users.create_api_key(db, "api", "job-control")
    assert migrate(db) == LATEST == current_version(db)
    assert users.get_user(db, "alice")["roles"] == ["user"]  # type: ignore[index]
    assert users.verify_api_key(db, key) is not None
    request_id, new = users.add_role_request(db, "bob", ["user"], "127.0.0.1")
    assert new and users.list_role_requests(db)[0]["id"] == request_id


def test_pending_role_requests_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = connect(tmp_path / "db")
    migrate(db)
    monkeypatch.setattr(users, "MAX_PENDING_REQUESTS", 3)
    for i in range(3):
        users.add_role_request(db, f"u{i}", [], "")
    users.add_role_request(db, "u0", ["user"], "")  # a repeat updates, it does not count again
    with pytest.raises(users.TooManyRequestsPending):
        users.add_role_request(db, "u9", [], "")
    users.resolve_role_request(db, users.list_role_requests(db)[0]["id"])
    users.add_role_request(db, "u9", [], "")  # room again once the admins answer
