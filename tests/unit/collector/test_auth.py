"""Authentication and roles: sessions, cookies, logout, expiry, API keys, ownership."""

from __future__ import annotations

import asyncio
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


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _add_job(store: SqliteStore, job_id: int, user: str) -> None:
    store.writer.execute(
        "INSERT INTO jobs (job_id, cluster, user_name, start_time, updated, nodes) VALUES (?, 'c', ?, ?, ?, '[]')",
        (job_id, user, int(time.time()), time.time()),
    )


async def test_protected_routes_need_credentials(fx_client: AsyncTestClient) -> None:
    response = await fx_client.get("/api/jobs")
    assert response.status_code == 401
    assert response.json()["detail"]
    assert (await fx_client.get("/api/ping")).status_code == 200


async def test_login_sets_httponly_cookie_and_returns_token(fx_client: AsyncTestClient) -> None:
    response = await fx_client.post("/api/login", json={"Username": "alice", "Password": "alice-password"})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {"Username": "alice", "Roles": ["user"]}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("Authorization=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    # the cookie alone authenticates (browsers), as does the bearer token (scripts)
    assert (await fx_client.get("/api/jobs")).status_code == 200
    fx_client.cookies.clear()
    assert (await fx_client.get("/api/jobs", headers=_bearer(body["token"]))).status_code == 200


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

    fx_settings.session_ttl = 1
    async with AsyncTestClient(app=create_app(fx_store, fx_settings)) as client:
        token = await login(client, "alice", "alice-password")
        client.cookies.clear()
        assert (await client.get("/api/jobs", headers=_bearer(token))).status_code == 200
        await asyncio.sleep(2.1)
        assert (await client.get("/api/jobs", headers=_bearer(token))).status_code == 401


async def test_api_keys_header_bearer_role_scope_and_revocation(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    key, record = users.create_api_key(fx_store.writer, "service:slurm", "job-control", "hooks")
    stored = fx_store.writer.execute("SELECT digest FROM api_keys").fetchone()[0]
    assert key.split("_", 2)[2] not in stored  # only a digest is kept
    # job-control may not read jobs
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": key})).status_code == 403
    user_key, _ = users.create_api_key(fx_store.writer, "alice", "user", "script")
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": user_key})).status_code == 200
    assert (await fx_client.get("/api/jobs", headers=_bearer(user_key))).status_code == 200
    users.revoke_api_key(fx_store.writer, record["id"])
    users.revoke_api_key(fx_store.writer, user_key.split("_")[1])
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": user_key})).status_code == 401
    assert (await fx_client.get("/api/jobs", headers={"X-API-Key": "jp_nope_nope"})).status_code == 401


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
        and first not in admin["password_hash"]
        and admin["password_hash"].startswith("$argon2")
    )
