"""Issue 14, credential defects D1, D4, D5, D9, D12: through the real app over a real SQLite file.

Keys that the probe had (made before the fix: a Slurm-hook key owned by ``admin``, a user key owned by the
admin who made it) are written as rows, as the old code stored them; everything else goes over HTTP.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector import cli
from jobpulse.collector.app import create_app
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import AsyncTestClient, TestClient
from seed import add_job
from storehelp import db_of


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _key(key: str) -> dict[str, str]:
    return {"X-API-Key": key, "Accept": "application/json"}


def _legacy_key(db: sqlite3.Connection, owner: str, role: str) -> str:
    """A key as the code before issue 14 stored it (any owner, no owner rule): the probe's keys."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO api_keys (id, digest, owner, role, name, created) VALUES (?, ?, ?, ?, 'probe', ?)",
        (key_id, hashlib.sha256(secret.encode()).hexdigest(), owner, role, time.time()),
    )
    return f"jp_{key_id}_{secret}"


async def _admin(client: AsyncTestClient) -> dict[str, str]:
    token = await login(client, "admin", ADMIN_PASSWORD)
    client.cookies.clear()
    return {**_bearer(token), "Accept": "application/json"}


def _admin_keys(store: SqliteStore) -> int:
    return int(db_of(store).execute("SELECT count(*) FROM api_keys WHERE role = 'admin'").fetchone()[0])


# -- D1: any API key became its owner's full account ------------------------------------------------
@pytest.mark.parametrize("role", ["job-control", "user"])
async def test_d1_api_key_escalation_is_refused_at_the_ticket(
    fx_client: AsyncTestClient, fx_store: SqliteStore, role: str
) -> None:
    """The probe's three requests: ws-ticket with the key, generateAPIKey role=admin with the ticket, then an
    admin route. The README's Slurm-hook key (owner ``admin``) and a user key (owner the admin who made it)."""
    key = _legacy_key(db_of(fx_store), "admin", role)
    ticket = await fx_client.post("/api/auth/ws-ticket", headers=_key(key))
    assert ticket.status_code == 403, ticket.text  # step 1 refused: no token of the owner's account
    assert "login session" in ticket.json()["detail"]
    # nor does the key itself reach steps 2 and 3
    minted = await fx_client.post(
        "/api/generateAPIKey", json={"role": "admin", "owner": "admin"}, headers=_key(key)
    )
    assert minted.status_code == 403
    assert (await fx_client.get("/api/admin/apikeys", headers=_key(key))).status_code == 403
    assert _admin_keys(fx_store) == 0


async def test_d1_keys_from_generate_api_key_cannot_get_a_ticket(fx_client: AsyncTestClient) -> None:
    admin = await _admin(fx_client)
    hook = (await fx_client.post("/api/generateAPIKey", headers=admin)).json()  # JobMon's page: job-control
    mine = (await fx_client.post("/api/generateAPIKey?role=user&owner=admin", headers=admin)).json()
    for created in (hook, mine):
        assert (await fx_client.post("/api/auth/ws-ticket", headers=_key(created["key"]))).status_code == 403
    # a login session still gets one
    assert (await fx_client.post("/api/auth/ws-ticket", headers=admin)).status_code == 200


async def test_d1_audit_names_the_key_not_its_owner(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    admin = await _admin(fx_client)
    ops = (await fx_client.post("/api/generateAPIKey?role=admin&owner=admin&name=ops", headers=admin)).json()
    made = await fx_client.post("/api/generateAPIKey", headers=_key(ops["key"]))
    assert made.status_code == 200, made.text
    await fx_client.delete(f"/api/admin/apikeys/{made.json()['id']}", headers=_key(ops["key"]))
    audit = (await fx_client.get("/api/admin/audit", headers=admin)).json()
    assert [(e["actor"], e["action"]) for e in audit[:3]] == [
        (f"key:{ops['id']}", "revoke_api_key"),
        (f"key:{ops['id']}", "create_api_key"),
        ("admin", "create_api_key"),
    ]


async def test_d1_key_owners_are_named_and_hold_the_role(fx_client: AsyncTestClient) -> None:
    admin = await _admin(fx_client)
    # job-control keys belong to a service principal, listed as such
    hook = await fx_client.post("/api/generateAPIKey?service=slurm-hooks&name=hooks", headers=admin)
    assert hook.status_code == 200 and hook.json()["owner"] == "service:slurm-hooks"
    same = await fx_client.post("/api/generateAPIKey", json={"owner": "service:slurm-hooks"}, headers=admin)
    assert same.json()["owner"] == "service:slurm-hooks"
    listed = {k["id"]: k["owner"] for k in (await fx_client.get("/api/admin/apikeys", headers=admin)).json()}
    assert listed[hook.json()["id"]] == "service:slurm-hooks"
    refused = {
        "job-control key owned by a person": {"owner": "admin"},
        "admin key without an owner": {"role": "admin"},
        "user key without an owner": {"role": "user"},
        "admin key of a non-admin": {"role": "admin", "owner": "alice"},
        "key of nobody": {"role": "user", "owner": "nobody"},
        "service owning a user key": {"role": "user", "service": "x"},
        "bad service name": {"service": "Slurm Hooks"},
        "owner and service": {"owner": "admin", "service": "x"},
    }
    for why, body in refused.items():
        response = await fx_client.post("/api/generateAPIKey", json=body, headers=admin)
        assert response.status_code == 400, (why, response.text)
        assert "owner" in response.json()["detail"], why


async def test_d1_service_names_cannot_be_login_names(
    fx_client: AsyncTestClient, fx_settings: CollectorSettings
) -> None:
    admin = await _admin(fx_client)
    response = await fx_client.patch(
        "/api/config/users/service:slurm-hooks", json={"Roles": ["admin"]}, headers=admin
    )
    assert response.status_code == 400 and "service" in response.json()["detail"]
    with pytest.raises(users.InvalidUserName):
        users.check_user_name("service:x")


def test_d1_cli_names_the_owner(
    tmp_path: Path, fx_store: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--database", str(tmp_path / "jobpulse.db")]  # fx_store's file (state_dir is tmp_path)
    assert (
        cli.main(["create-api-key", "--role", "job-control", "--service", "slurm-hooks", "--name", "h", *db])
        == 0
    )
    key = capsys.readouterr().out.strip()
    record = users.verify_api_key(db_of(fx_store), key)
    assert record is not None and record.owner == "service:slurm-hooks"
    # the old command (owner admin by default) names no owner: refused, saying what to add
    assert cli.main(["create-api-key", "--role", "job-control", "--name", "slurm-hooks", *db]) == 2
    assert "--service" in capsys.readouterr().err
    assert cli.main(["create-api-key", "--role", "job-control", "--owner", "admin", *db]) == 2
    assert cli.main(["create-api-key", "--role", "admin", "--owner", "alice", *db]) == 2
    assert "does not hold" in capsys.readouterr().err
    assert cli.main(["create-api-key", "--role", "user", "--owner", "alice", *db]) == 0
    assert cli.main(["add-user", "service:x", *db]) == 2
    owners = sorted(r.owner for r in users.list_api_keys(db_of(fx_store)))
    assert owners == ["alice", "service:slurm-hooks"]


# -- D4: job-control read any job's metadata through job_start ----------------------------------------
async def test_d4_job_control_reads_nothing_from_start_and_stop(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    add_job(db_of(fx_store), 777, "bob", start=int(time.time()) - 60, stop=None, account="secret-project")
    admin = await _admin(fx_client)
    hook = (await fx_client.post("/api/generateAPIKey", headers=admin)).json()["key"]  # JobMon's default
    start = await fx_client.put("/api/job_start", json={"Id": 777}, headers=_key(hook))
    assert start.status_code == 200  # JobMon's Slurm script checks the status only
    assert start.json() == {"Id": 777}
    stop = await fx_client.patch("/api/job_stop/777", json={"ExitCode": 0}, headers=_key(hook))
    assert stop.status_code == 200 and stop.json() == {"Id": 777}
    for response in (start, stop):
        assert "bob" not in response.text and "secret-project" not in response.text
    # admins keep the full answer
    as_admin = await fx_client.put("/api/job_start", json={"Id": 778, "UserName": "carol"}, headers=admin)
    assert as_admin.status_code == 200 and as_admin.json()["UserName"] == "carol"


# -- D5: a ws-ticket worked as a bearer token everywhere, and after logout ----------------------------
def _ticket(client: TestClient, token: str) -> str:
    response = client.post("/api/auth/ws-ticket", headers=_bearer(token))
    assert response.status_code == 200, response.text
    ticket: str = response.json()["token"]
    return ticket


def test_d5_ws_ticket_works_on_websockets_only_and_dies_with_its_session(
    fx_store: SqliteStore, fx_settings: CollectorSettings
) -> None:
    with TestClient(app=create_app(fx_store, fx_settings)) as client:
        token = client.post("/api/login", json={"Username": "admin", "Password": ADMIN_PASSWORD}).json()[
            "token"
        ]
        client.cookies.clear()
        ticket = _ticket(client, token)
        # not a bearer token on HTTP routes, admin routes included, nor a way to another ticket
        for method, path in [
            ("GET", "/api/jobs"),
            ("GET", "/api/admin/apikeys"),
            ("POST", "/api/generateAPIKey"),
        ]:
            response = client.request(method, path, headers=_bearer(ticket))
            assert response.status_code == 401, (path, response.text)
        assert client.post("/api/auth/ws-ticket", headers=_bearer(ticket)).status_code == 401
        # it works where it is meant to
        with client.websocket_connect(f"/api/admin/livelog?token={ticket}") as ws:
            assert ws.receive_text(timeout=5)
        # a session token does not belong in a URL
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect(f"/api/admin/livelog?token={token}") as ws,
        ):
            ws.receive_text(timeout=5)
        # logout ends the session's tickets too
        assert client.post("/api/logout", headers=_bearer(token)).status_code == 200
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect(f"/api/admin/livelog?token={ticket}") as ws,
        ):
            ws.receive_text(timeout=5)


# -- D9: a user whose roles were removed kept working API keys -----------------------------------------
async def test_d9_keys_stop_when_their_owner_loses_the_role(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    admin = await _admin(fx_client)
    await fx_client.patch("/api/config/users/carol", json={"Roles": ["admin", "user"]}, headers=admin)
    alice_key = (await fx_client.post("/api/generateAPIKey?role=user&owner=alice", headers=admin)).json()[
        "key"
    ]
    carol_key = (await fx_client.post("/api/generateAPIKey?role=admin&owner=carol", headers=admin)).json()[
        "key"
    ]
    hook_key = (await fx_client.post("/api/generateAPIKey?service=slurm-hooks", headers=admin)).json()["key"]
    assert (await fx_client.get("/api/jobs", headers=_key(alice_key))).status_code == 200
    assert (await fx_client.get("/api/admin/apikeys", headers=_key(carol_key))).status_code == 200

    await fx_client.patch("/api/config/users/alice", json={"Roles": []}, headers=admin)
    await fx_client.patch("/api/config/users/carol", json={"Roles": ["user"]}, headers=admin)
    refused = await fx_client.get("/api/jobs", headers=_key(alice_key))
    assert refused.status_code == 401 and "no longer holds" in refused.json()["detail"]
    assert (await fx_client.get("/api/admin/apikeys", headers=_key(carol_key))).status_code == 401
    # a removed user's keys stop too; a service principal's key does not depend on any person
    await fx_client.patch("/api/config/users/alice", json={"Roles": ["user"]}, headers=admin)
    assert (await fx_client.get("/api/jobs", headers=_key(alice_key))).status_code == 200
    db_of(fx_store).execute("DELETE FROM users WHERE username = 'alice'")
    assert (await fx_client.get("/api/jobs", headers=_key(alice_key))).status_code == 401
    assert (await fx_client.put("/api/job_start", json={"Id": 5}, headers=_key(hook_key))).status_code == 200


# -- D12: a failed login logged the typed user name verbatim (often a password) ------------------------
def test_d12_failed_login_never_logs_an_unknown_name(
    fx_store: SqliteStore, fx_settings: CollectorSettings, caplog: pytest.LogCaptureFixture
) -> None:
    typed = "Tr0ub4dor&3-" + secrets.token_hex(4)  # a password typed into the user name field
    with TestClient(app=create_app(fx_store, fx_settings)) as client:
        caplog.set_level(logging.INFO)
        assert client.post("/api/login", json={"Username": typed, "Password": "x"}).status_code == 401
        assert client.post("/api/login", json={"Username": "alice", "Password": typed}).status_code == 401
        token = client.post("/api/login", json={"Username": "admin", "Password": ADMIN_PASSWORD}).json()[
            "token"
        ]
        client.cookies.clear()
        lines: list[Any] = []
        with client.websocket_connect(f"/api/admin/livelog?token={_ticket(client, token)}") as ws:
            while not any("failed login for 'alice'" in line for line in lines):
                lines.append(ws.receive_text(timeout=5))
    failed = [line for line in lines if "failed login" in line]
    assert len(failed) == 2 and "unknown name" in failed[0]
    assert typed not in "".join(lines)  # not in the admin live log
    assert typed not in caplog.text  # nor in the log itself
