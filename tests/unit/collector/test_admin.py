"""Administration endpoints: API keys, per-user roles, role requests, the audit log."""

from __future__ import annotations

import json

from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from storehelp import db_of


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _admin(client: AsyncTestClient) -> dict[str, str]:
    """Headers of an admin script: bearer token, and asking for JSON answers."""
    token = await login(client, "admin", ADMIN_PASSWORD)
    client.cookies.clear()
    return {**_bearer(token), "Accept": "application/json"}


async def _alice(client: AsyncTestClient) -> dict[str, str]:
    token = await login(client, "alice", "alice-password")
    client.cookies.clear()
    return _bearer(token)


ADMIN_ROUTES = [
    ("POST", "/api/generateAPIKey"),
    ("GET", "/api/admin/apikeys"),
    ("DELETE", "/api/admin/apikeys/abc"),
    ("GET", "/api/admin/audit"),
    ("GET", "/api/admin/notifications"),
    ("GET", "/api/config/users/alice"),
    ("PATCH", "/api/config/users/alice"),
]


async def test_admin_routes_refuse_anonymous_users_and_job_control_keys(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    alice = await _alice(fx_client)
    hook_key, _ = users.create_api_key(db_of(fx_store), "service:api", "job-control")
    for method, path in ADMIN_ROUTES:
        body = {"Roles": ["admin"]} if method == "PATCH" else None
        anonymous = await fx_client.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["detail"]
        as_user = await fx_client.request(method, path, json=body, headers=alice)
        assert as_user.status_code == 403, (method, path)
        assert "admin" in as_user.json()["detail"]
        as_hook = await fx_client.request(method, path, json=body, headers={"X-API-Key": hook_key})
        assert as_hook.status_code == 403, (method, path)
    # nothing changed: alice is still a plain user
    assert users.get_user(db_of(fx_store), "alice").roles == ("user",)  # type: ignore[union-attr]


async def test_generate_api_key_defaults_to_job_control_and_is_shown_once(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    admin = await _admin(fx_client)
    response = await fx_client.post("/api/generateAPIKey", headers=admin)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["role"] == "job-control" and created["owner"] == "service:api"  # a service principal
    key = created["key"]
    assert key.startswith("jp_")
    # stored hashed only, and never listed again
    assert key.split("_", 2)[2] not in json.dumps(
        [dict(r) for r in db_of(fx_store).execute("SELECT * FROM api_keys")]
    )
    listed = (await fx_client.get("/api/admin/apikeys", headers=admin)).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and "digest" not in listed[0]
    # a job-control key works for the Slurm hooks' role and for nothing else
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": key})).status_code == 403
    assert (await fx_client.get("/api/admin/apikeys", headers=_bearer(key))).status_code == 403


async def test_generate_api_key_answers_the_bare_key_to_jobmons_front_end(fx_client: AsyncTestClient) -> None:
    """JobMon's settings page POSTs with its cookie, no body and no Accept preference, and shows the body."""
    await login(fx_client, "admin", ADMIN_PASSWORD)  # keeps the session cookie, like the browser
    response = await fx_client.post("/api/generateAPIKey", headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    key = response.text
    assert key.startswith("jp_") and "\n" not in key
    fx_client.cookies.clear()
    # a working job-control key: authenticated (not 401), but not allowed to read jobs
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": key})).status_code == 403


async def test_api_key_role_from_query_or_body_and_revocation(fx_client: AsyncTestClient) -> None:
    admin = await _admin(fx_client)
    by_query = await fx_client.post("/api/generateAPIKey?role=user&owner=alice&name=nightly", headers=admin)
    assert by_query.status_code == 200, by_query.text
    assert (by_query.json()["role"], by_query.json()["owner"], by_query.json()["name"]) == (
        "user",
        "alice",
        "nightly",
    )
    by_body = await fx_client.post(
        "/api/generateAPIKey",
        json={"role": "admin", "owner": "admin", "name": "ops", "expires_days": 1},
        headers=admin,
    )
    assert by_body.status_code == 200
    assert by_body.json()["role"] == "admin" and by_body.json()["expires"] is not None
    user_key = by_query.json()["key"]
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": user_key})).status_code == 200
    revoked = await fx_client.delete(f"/api/admin/apikeys/{by_query.json()['id']}", headers=admin)
    assert revoked.status_code == 204
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": user_key})).status_code == 401
    again = await fx_client.delete(f"/api/admin/apikeys/{by_query.json()['id']}", headers=admin)
    assert again.status_code == 404 and "already revoked" in again.json()["detail"]
    listed = {k["id"]: k for k in (await fx_client.get("/api/admin/apikeys", headers=admin)).json()}
    assert listed[by_query.json()["id"]]["revoked"] is not None


async def test_api_key_bad_input_is_a_clear_400(fx_client: AsyncTestClient) -> None:
    admin = await _admin(fx_client)
    unknown = await fx_client.post("/api/generateAPIKey?role=superuser", headers=admin)
    assert unknown.status_code == 400 and "superuser" in unknown.json()["detail"]
    wrong_type = await fx_client.post("/api/generateAPIKey", json={"expires_days": "soon"}, headers=admin)
    assert wrong_type.status_code == 400 and "expires_days" in wrong_type.json()["detail"]
    extra = await fx_client.post("/api/generateAPIKey", json={"rolez": "user"}, headers=admin)
    assert extra.status_code == 400 and "rolez" in extra.json()["detail"]
    bad_owner = await fx_client.post(
        "/api/generateAPIKey", json={"role": "user", "owner": "a b"}, headers=admin
    )
    assert bad_owner.status_code == 400 and "owner" in bad_owner.json()["detail"]


async def test_user_roles_read_update_validated_and_audited(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    admin = await _admin(fx_client)
    got = await fx_client.get("/api/config/users/alice", headers=admin)
    assert got.status_code == 200 and got.json() == {"Username": "alice", "Roles": ["user"]}
    missing = await fx_client.get("/api/config/users/nobody", headers=admin)
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
    alice = await _alice(fx_client)
    assert (await fx_client.get("/api/admin/apikeys", headers=alice)).status_code == 403
    updated = await fx_client.patch(
        "/api/config/users/alice", json={"Username": "alice", "Roles": ["user", "admin"]}, headers=admin
    )
    assert updated.status_code == 200 and updated.json() == {"Username": "alice", "Roles": ["admin", "user"]}
    # alice's existing session now carries the new role
    assert (await fx_client.get("/api/admin/apikeys", headers=alice)).status_code == 200
    audit = (await fx_client.get("/api/admin/audit", headers=admin)).json()
    assert (
        audit[0]["action"] == "set_roles" and audit[0]["actor"] == "admin" and audit[0]["target"] == "alice"
    )
    assert audit[0]["detail"] == {"before": ["user"], "after": ["admin", "user"]}


async def test_user_roles_bad_input(fx_client: AsyncTestClient, fx_store: SqliteStore) -> None:
    admin = await _admin(fx_client)
    unknown = await fx_client.patch(
        "/api/config/users/alice", json={"Roles": ["user", "wizard"]}, headers=admin
    )
    assert unknown.status_code == 400 and "wizard" in unknown.json()["detail"]
    wrong_type = await fx_client.patch("/api/config/users/alice", json={"Roles": "admin"}, headers=admin)
    assert wrong_type.status_code == 400 and "Roles" in wrong_type.json()["detail"]
    other_name = await fx_client.patch(
        "/api/config/users/alice", json={"Username": "bob", "Roles": ["admin"]}, headers=admin
    )
    assert other_name.status_code == 400 and "Username" in other_name.json()["detail"]
    last_admin = await fx_client.patch("/api/config/users/admin", json={"Roles": ["user"]}, headers=admin)
    assert last_admin.status_code == 409 and "last admin" in last_admin.json()["detail"]
    assert users.get_user(db_of(fx_store), "alice").roles == ("user",)  # type: ignore[union-attr]
    assert users.list_audit(db_of(fx_store)) == []  # refused changes leave no audit entry
    # an unknown user (e.g. an OIDC user before their first login) can be given roles in advance
    created = await fx_client.patch("/api/config/users/carol", json={"Roles": ["user"]}, headers=admin)
    assert created.status_code == 200 and created.json()["Roles"] == ["user"]
    carol = users.get_user(db_of(fx_store), "carol")
    assert carol is not None and carol.password_hash is None  # cannot log in with a password


async def test_notify_admin_stores_a_role_request_for_admins(fx_client: AsyncTestClient) -> None:
    response = await fx_client.post("/api/notify/admin", json={"Username": "dave", "Roles": []})
    assert response.status_code == 200, response.text
    again = await fx_client.post("/api/notify/admin", json={"Username": "dave", "Roles": ["user"]})
    assert again.status_code == 200
    admin = await _admin(fx_client)
    pending = (await fx_client.get("/api/admin/notifications", headers=admin)).json()
    assert [(p["username"], p["roles"]) for p in pending] == [("dave", ["user"])]  # one request, updated
    # granting a role answers the request
    await fx_client.patch("/api/config/users/dave", json={"Roles": ["user"]}, headers=admin)
    assert (await fx_client.get("/api/admin/notifications", headers=admin)).json() == []
    everything = (await fx_client.get("/api/admin/notifications?all=true", headers=admin)).json()
    assert everything[0]["resolved"] is not None
    # dismissing without granting
    await fx_client.post("/api/notify/admin", json={"Username": "erin", "Roles": ["user"]})
    request_id = (await fx_client.get("/api/admin/notifications", headers=admin)).json()[0]["id"]
    assert (
        await fx_client.delete(f"/api/admin/notifications/{request_id}", headers=admin)
    ).status_code == 204
    assert (
        await fx_client.delete(f"/api/admin/notifications/{request_id}", headers=admin)
    ).status_code == 404
    assert (await fx_client.get("/api/admin/audit?actor=admin", headers=admin)).json()[0]["action"] == (
        "dismiss_role_request"
    )


async def test_notify_admin_bad_input(fx_client: AsyncTestClient) -> None:
    no_name = await fx_client.post("/api/notify/admin", json={"Roles": ["user"]})
    assert no_name.status_code == 400 and "Username" in no_name.json()["detail"]
    empty = await fx_client.post("/api/notify/admin", json={"Username": "", "Roles": []})
    assert empty.status_code == 400 and "Username" in empty.json()["detail"]
    bad_role = await fx_client.post("/api/notify/admin", json={"Username": "x", "Roles": ["root"]})
    assert bad_role.status_code == 400 and "root" in bad_role.json()["detail"]
    huge = await fx_client.post("/api/notify/admin", json={"Username": "x" * 300, "Roles": []})
    assert huge.status_code == 400 and "Username" in huge.json()["detail"]
    not_json = await fx_client.post(
        "/api/notify/admin", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["detail"]


async def test_audit_log_paging(fx_client: AsyncTestClient) -> None:
    admin = await _admin(fx_client)
    for _ in range(3):
        await fx_client.post("/api/generateAPIKey", headers=admin)
    first = (await fx_client.get("/api/admin/audit?limit=2", headers=admin)).json()
    rest = (await fx_client.get("/api/admin/audit?limit=2&offset=2", headers=admin)).json()
    assert len(first) == 2 and len(rest) == 1
    assert all(e["action"] == "create_api_key" for e in first + rest)
    assert first[0]["id"] > first[1]["id"] > rest[0]["id"]
    bad = await fx_client.get("/api/admin/audit?limit=0", headers=admin)
    assert bad.status_code == 400 and "limit" in bad.json()["detail"]
    huge = await fx_client.delete("/api/admin/notifications/92146752539874711078455738368", headers=admin)
    assert (
        huge.status_code == 400 and "request_id" in huge.json()["detail"]
    )  # found by schemathesis: was a 500
    not_int = await fx_client.delete("/api/admin/notifications/abc", headers=admin)
    assert not_int.status_code in (400, 404) and not_int.json()["detail"]
