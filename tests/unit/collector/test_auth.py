"""Authentication and roles: sessions, cookies, logout, expiry, API keys, ownership."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from storehelp import db_of


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _add_job(store: SqliteStore, job_id: int, user: str) -> None:
    db_of(store).execute(
        "INSERT INTO jobs (job_id, cluster, user_name, start_time, updated, nodes) VALUES (?, 'c', ?, ?, ?, '[]')",
        (job_id, user, int(time.time()), time.time()),
    )


async def test_protected_routes_need_credentials(fx_client: AsyncTestClient) -> None:
    response = await fx_client.get("/api/jobs")
    assert response.status_code == 401
    assert response.json()["detail"]
    assert (await fx_client.get("/api/ping")).status_code == 200


async def test_login_sets_the_cookie_and_returns_token(fx_client: AsyncTestClient) -> None:
    response = await fx_client.post("/api/login", json={"Username": "alice", "Password": "alice-password"})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {"Username": "alice", "Roles": ["user"]}
    cookie = response.headers["set-cookie"]
    # JobMon's front end reads it in JavaScript (cookie_js_readable, the default): unquoted, not HttpOnly
    assert cookie.startswith(f"Authorization=Bearer {body['token']};") and "SameSite=lax" in cookie
    assert "HttpOnly" not in cookie
    # the cookie alone authenticates (browsers), as does the bearer token (scripts)
    assert (await fx_client.get("/api/jobs")).status_code == 200
    fx_client.cookies.clear()
    assert (await fx_client.get("/api/jobs", headers=_bearer(body["token"]))).status_code == 200


async def test_cookie_is_httponly_when_no_page_reads_it(
    fx_store: SqliteStore, fx_settings: CollectorSettings
) -> None:
    from jobpulse.collector.app import create_app

    fx_settings.cookie_js_readable = False
    async with AsyncTestClient(app=create_app(fx_store, fx_settings)) as client:
        response = await client.post("/api/login", json={"Username": "alice", "Password": "alice-password"})
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("Authorization=Bearer ey") and "HttpOnly" in cookie
        assert (await client.get("/api/jobs")).status_code == 200


async def test_wrong_password_and_unknown_user_look_the_same(fx_client: AsyncTestClient) -> None:
    a = await fx_client.post("/api/login", json={"Username": "alice", "Password": "nope"})
    b = await fx_client.post("/api/login", json={"Username": "mallory", "Password": "nope"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


async def test_login_body_is_validated_with_the_field_named(fx_client: AsyncTestClient) -> None:
    response = await fx_client.post("/api/login", json={"Username": "alice"})
    assert response.status_code == 400
    assert "Password" in json.dumps(response.json())
    response = await fx_client.post("/api/login", json={"Username": 5, "Password": "x"})
    assert response.status_code == 400 and "Username" in json.dumps(response.json())


async def test_logout_ends_the_session_server_side(fx_client: AsyncTestClient) -> None:
    token = await login(fx_client, "alice", "alice-password")
    fx_client.cookies.clear()
    assert (await fx_client.post("/api/logout", headers=_bearer(token))).status_code == 200
    assert (await fx_client.get("/api/jobs", headers=_bearer(token))).status_code == 401


async def test_tokens_expire(fx_store: SqliteStore, fx_settings: CollectorSettings) -> None:
    from jobpulse.collector.app import create_app

    # 3 s: the login and the first request must fit in the token's life on a loaded 2-core machine
    # (with 1 s they did not, once in a while); the token is then used a second past its expiry.
    fx_settings.session_ttl = 3
    async with AsyncTestClient(app=create_app(fx_store, fx_settings)) as client:
        issued = time.time()
        token = await login(client, "alice", "alice-password")
        client.cookies.clear()
        assert (await client.get("/api/jobs", headers=_bearer(token))).status_code == 200
        await asyncio.sleep(max(0.0, issued + 4.1 - time.time()))
        assert (await client.get("/api/jobs", headers=_bearer(token))).status_code == 401


async def test_api_keys_header_bearer_role_scope_and_revocation(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    key, record = users.create_api_key(db_of(fx_store), "service:slurm", "job-control", "hooks")
    stored = db_of(fx_store).execute("SELECT digest FROM api_keys").fetchone()[0]
    assert key.split("_", 2)[2] not in stored  # only a digest is kept
    # job-control may not read jobs
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": key})).status_code == 403
    user_key, _ = users.create_api_key(db_of(fx_store), "alice", "user", "script")
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": user_key})).status_code == 200
    assert (await fx_client.get("/api/jobs", headers=_bearer(user_key))).status_code == 200
    users.revoke_api_key(db_of(fx_store), record.id)
    users.revoke_api_key(db_of(fx_store), user_key.split("_")[1])
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": user_key})).status_code == 401
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": "jp_nope_nope"})).status_code == 401


async def test_api_key_in_the_cookie_as_jobmons_slurm_script_sends_it(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    """curl --cookie "Authorization=Bearer <key>": the value holds a space; quoted works as well."""
    key, record = users.create_api_key(db_of(fx_store), "service:slurm", "job-control", "hooks")
    user_key, _ = users.create_api_key(db_of(fx_store), "alice", "user", "script")
    for value in (f"Bearer {key}", f'"Bearer {key}"', key):
        cookie = {"Cookie": f"Authorization={value}"}
        assert (await fx_client.patch("/api/job_stop/9", json={}, headers=cookie)).status_code == 200
        assert (await fx_client.get("/api/jobs", headers=cookie)).status_code == 403  # its role only
    as_user = {"Cookie": f"other=1; Authorization=Bearer {user_key}"}
    assert (await fx_client.get("/api/jobs", headers=as_user)).status_code == 200
    assert (await fx_client.patch("/api/job_stop/9", json={}, headers=as_user)).status_code == 403
    users.revoke_api_key(db_of(fx_store), record.id)
    revoked = {"Cookie": f"Authorization=Bearer {key}"}
    assert (await fx_client.patch("/api/job_stop/9", json={}, headers=revoked)).status_code == 401
    # a credential in a header wins over the cookie
    both = {"Cookie": f"Authorization=Bearer {user_key}", "X-API-Key": "jp_nope_nope"}
    assert (await fx_client.get("/api/jobs", headers=both)).status_code == 401


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


async def test_session_jwt_carries_jobmons_claims_for_display_only(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    """JobMon's front end reads Username and Roles from the cookie's JWT; jobpulse authorizes from the
    server-side session and the user's roles now, never from the claims."""
    token = await login(fx_client, "alice", "alice-password")
    fx_client.cookies.clear()
    claims = _claims(token)
    assert (claims["Username"], claims["Roles"], claims["sub"]) == ("alice", ["user"], "alice")
    assert claims["exp"] > time.time() and claims["jti"]
    # a token whose claims were edited fails its signature
    forged = _claims(token) | {"Roles": ["admin"], "Username": "admin"}
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    tampered = ".".join([token.split(".")[0], body, token.split(".")[2]])
    assert (await fx_client.get("/api/jobs", headers=_bearer(tampered))).status_code == 401
    # the roles are the user's current ones, whatever the claims say
    assert (await fx_client.get("/api/admin/apikeys", headers=_bearer(token))).status_code == 403
    users.set_roles(db_of(fx_store), "alice", ["user", "admin"])
    assert (await fx_client.get("/api/admin/apikeys", headers=_bearer(token))).status_code == 200
    users.set_roles(db_of(fx_store), "alice", [])
    assert (await fx_client.get("/api/jobs", headers=_bearer(token))).status_code == 403
    # and the session ends on the server (the claims are still "valid" in the token)
    users.set_roles(db_of(fx_store), "alice", ["user"])
    cookie = {"Cookie": f"Authorization=Bearer {token}"}
    assert (await fx_client.post("/api/logout", json=_claims(token), headers=cookie)).status_code == 200
    assert (await fx_client.get("/api/jobs", headers=cookie)).status_code == 401


async def test_users_see_only_their_own_jobs(fx_client: AsyncTestClient, fx_store: SqliteStore) -> None:
    _add_job(fx_store, 101, "alice")
    _add_job(fx_store, 202, "bob")
    alice = _bearer(await login(fx_client, "alice", "alice-password"))
    fx_client.cookies.clear()
    listed: list[dict[str, Any]] = (await fx_client.get("/api/jobs", headers=alice)).json()["Jobs"]
    assert [j["Id"] for j in listed] == [101]
    assert (await fx_client.get("/api/job/101", headers=alice)).status_code == 200
    other = await fx_client.get("/api/job/202", headers=alice)
    missing = await fx_client.get("/api/job/303", headers=alice)
    assert other.status_code == missing.status_code == 404
    assert other.text.replace("202", "N") == missing.text.replace("303", "N")  # plain text: JobMon's page
    json_accept = {**alice, "Accept": "application/json"}
    other = await fx_client.get("/api/job/202", headers=json_accept)
    missing = await fx_client.get("/api/job/303", headers=json_accept)
    assert other.json()["detail"].replace("202", "N") == missing.json()["detail"].replace("303", "N")
    admin = _bearer(await login(fx_client, "admin", ADMIN_PASSWORD))
    fx_client.cookies.clear()
    assert {j["Id"] for j in (await fx_client.get("/api/jobs", headers=admin)).json()["Jobs"]} == {101, 202}


async def test_first_start_prints_a_one_time_password_never_a_default(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store, second = SqliteStore(tmp_path / "db.sqlite"), SqliteStore(tmp_path / "db2.sqlite")
    store.open()
    second.open()
    settings = CollectorSettings(state_dir=tmp_path)
    try:
        first = await ensure_admin(store, settings)
        assert first and len(first) >= 16
        assert first in capsys.readouterr().err
        assert await ensure_admin(store, settings) is None  # only once
        assert await ensure_admin(second, settings) != first  # random per installation
        admin = await store.get_user("admin")
    finally:
        store.close()
        second.close()
    assert (
        admin is not None
        and admin.password_hash is not None
        and first not in admin.password_hash
        and admin.password_hash.startswith("$argon2")
    )


def test_passwords_are_hashed_with_rfc_9106_argon2id() -> None:
    """The product's hasher (the fast tier hashes cheaply in-process; this checks the real one)."""
    from argon2 import extract_parameters, profiles
    from cheap_hashes import PRODUCT_HASHER
    from jobpulse.collector.auth.passwords import verify_password

    stored = PRODUCT_HASHER.hash("correct horse")
    params = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert params == profiles.RFC_9106_LOW_MEMORY
    assert verify_password(stored, "correct horse") and not verify_password(stored, "wrong horse")
