"""The accounts service without HTTP (issue 15): its rules raise domain errors, never HTTP ones, and each
change lands with its audit entry or not at all."""

from __future__ import annotations

import pytest
from jobpulse.collector.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.services.accounts import CLI, AccountService
from jobpulse.collector.store.sqlite import SqliteStore

ADMIN = Principal(username="admin", roles=frozenset({"admin", "user"}), via="session", session_id="s1")
ALICE = Principal(username="alice", roles=frozenset({"user"}), via="session", session_id="s2")


async def test_last_admin_is_a_conflict_and_nothing_changes(fx_store: SqliteStore) -> None:
    accounts = AccountService(fx_store)
    with pytest.raises(Conflict, match="last admin"):
        await accounts.set_roles(ADMIN, "admin", ["user"])
    admin = await fx_store.get_user("admin")
    assert admin is not None and admin.roles == ("admin", "user")
    assert await fx_store.list_audit(100, 0, None) == []
    await accounts.set_roles(ADMIN, "alice", ["admin"])  # another admin first: then it may go
    await accounts.set_roles(ADMIN, "admin", ["user"])
    actions = [(e.action, e.target, e.actor) for e in await fx_store.list_audit(100, 0, None)]
    assert actions == [("set_roles", "admin", "admin"), ("set_roles", "alice", "admin")]


async def test_rules_answer_domain_errors(fx_store: SqliteStore) -> None:
    accounts = AccountService(fx_store)
    with pytest.raises(Forbidden):
        await accounts.list_api_keys(ALICE)  # administration needs the role, whoever calls
    with pytest.raises(InvalidInput) as bad_owner:
        await accounts.create_api_key(ADMIN, "admin", owner="alice")  # alice does not hold admin
    assert bad_owner.value.field == "owner"
    with pytest.raises(InvalidInput) as no_owner:
        await accounts.create_api_key(ADMIN, "user")
    assert no_owner.value.field == "owner"
    key, record = await accounts.create_api_key(CLI, "job-control")
    assert record.owner == "service:api"
    principal, _ = await accounts.key_principal(key)
    assert principal.roles == {"job-control"} and principal.actor == f"key:{record.id}"
    with pytest.raises(Forbidden):  # a ws-ticket only from a login session
        await accounts.ws_ticket(principal, 30)
    await accounts.revoke_api_key(ADMIN, record.id)
    with pytest.raises(Unauthorized):
        await accounts.key_principal(key)
    with pytest.raises(NotFound):
        await accounts.revoke_api_key(ADMIN, record.id)
    with pytest.raises(Unauthorized):
        await accounts.login("alice", "wrong password", "127.0.0.1")
