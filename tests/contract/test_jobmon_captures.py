"""Contract tests of the JobMon dialect, request side (issue 16): what JobMon's real clients send.

The Slurm script's two requests are replayed byte for byte from tests/fixtures/clients/requests.jsonl
(headers and body; only the placeholder key is replaced by a real key made through POST
/api/generateAPIKey, as an admin does in JobMon's settings page). The web front end's bodies are those
its code sends (no Content-Type of its own, so text/plain;charset=UTF-8; lower-case keys on login and
"Request Access"; the session cookie, never an Authorization header). Then the job must be there for
the clients that read it, and bad input must still be a 400 naming the field.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jobpulse.collector.app import create_app
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.auth.passwords import hash_password
from jobpulse.collector.domain import hostnames
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from support import FIXTURES

CAPTURES = [json.loads(line) for line in (FIXTURES / "clients" / "requests.jsonl").read_text().splitlines()]
START = next(c for c in CAPTURES if c["client"] == "jobmon-slurm-job_start")
STOP = next(c for c in CAPTURES if c["client"] == "jobmon-slurm-job_stop")
PLACEHOLDER_KEY = "jp_0123456789_examplekey"
ADMIN_PASSWORD = "admin-contract-pw"
ALICE_PASSWORD = "alice-contract-pw"
FRONT_END = {"Content-Type": "text/plain;charset=UTF-8"}  # what fetch() sends for a string body


@functools.cache
def _hash(password: str) -> str:
    return hash_password(password)  # once per test run (at the lowest cost: tests/conftest.py)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    settings = CollectorSettings(state_dir=tmp_path, admin_password=ADMIN_PASSWORD)
    store = SqliteStore(settings.database_path)
    store.open()
    await ensure_admin(store, settings)
    await store.save_user("alice", ["user"], _hash(ALICE_PASSWORD), actor="test")
    try:
        async with AsyncTestClient(app=create_app(store, settings)) as test_client:
            yield test_client
    finally:
        store.close()


def claims(jwt: str) -> dict[str, Any]:
    """What JobMon's front end does with the cookie: split on '.', base64url-decode the middle as JSON."""
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def front_end_login(client: AsyncTestClient, username: str, password: str) -> dict[str, str]:
    """JobMon's login page: lower-case keys, frontendOnly, text/plain; the cookie is what it keeps.

    Returns the ``Cookie`` header the browser sends afterwards (the client's own jar is emptied, so
    every request below carries exactly the credentials a test gives it)."""
    body = json.dumps({"username": username, "password": password, "frontendOnly": True})
    response = await client.post("/api/login", content=body.encode(), headers=FRONT_END)
    assert response.status_code == 200, response.text
    client.cookies.clear()
    set_cookie = response.headers["set-cookie"]
    value = set_cookie.split(";", 1)[0].removeprefix("Authorization=")
    # document.cookie must give "Bearer <JWT>": unquoted, and the cookie not HttpOnly
    assert value.startswith("Bearer ey") and '"' not in value and "HttpOnly" not in set_cookie
    return {"Cookie": f"Authorization={value}"}


async def slurm_key(client: AsyncTestClient, role: str) -> str:
    admin = await front_end_login(client, "admin", ADMIN_PASSWORD)
    query = "" if role == "job-control" else f"?role={role}&owner=admin"
    response = await client.post(f"/api/generateAPIKey{query}", headers=admin)  # JobMon's settings page
    assert response.status_code == 200, response.text
    return response.text.strip()


async def replay(client: AsyncTestClient, capture: dict[str, Any], key: str) -> Any:
    """The captured request as the script sent it, with ``key`` in place of the placeholder."""
    body = capture["body"].encode()
    headers = dict(capture["headers"])
    assert int(headers["Content-Length"]) == len(body)  # the capture is whole
    assert headers["Cookie"] == f"Authorization=Bearer {PLACEHOLDER_KEY}"
    headers["Cookie"] = headers["Cookie"].replace(PLACEHOLDER_KEY, key)
    return await client.request(capture["method"], capture["path"], content=body, headers=headers)


def node_names(job: dict[str, Any]) -> set[str]:
    """The job's nodes as JobMon's front end lists them (``NodeList`` split on '|'), or from ``Nodes``."""
    from_list = set(hostnames.expand_all(job["NodeList"].split("|")))
    from_nodes = {n["Name"] for n in job["Nodes"]}
    assert from_list == from_nodes
    return from_nodes


@pytest.mark.parametrize("role", ["job-control", "admin"])
async def test_slurm_script_start_and_stop_replayed_byte_for_byte(client: AsyncTestClient, role: str) -> None:
    key = await slurm_key(client, role)
    admin = await front_end_login(client, "admin", ADMIN_PASSWORD)
    sent_start, sent_stop = json.loads(START["body"]), json.loads(STOP["body"])

    started = await replay(client, START, key)
    assert started.status_code == 200, started.text
    listed = await client.get("/api/jobs?NumGpus=0,224&NumNodes=1,192", headers=admin)
    assert listed.status_code == 200, listed.text
    [running] = [j for j in listed.json()["Jobs"] if j["Id"] == 4242]
    assert running["IsRunning"] is True and running["UserName"] == "alice"

    stopped = await replay(client, STOP, key)
    assert stopped.status_code == 200, stopped.text

    listed = await client.get("/api/jobs?NumGpus=0,224&NumNodes=1,192", headers=admin)
    [job] = [j for j in listed.json()["Jobs"] if j["Id"] == 4242]
    page = await client.get("/api/job/4242", headers=admin)
    assert page.status_code == 200, page.text
    meta = page.json()["Metadata"]
    for shown in (job, meta):
        assert (shown["UserName"], shown["GroupName"], shown["Account"], shown["Partition"]) == (
            "alice",
            "users",
            "proj1",
            "gpu",
        )
        assert (shown["NumNodes"], shown["GPUsPerNode"], shown["JobName"]) == (2, 4, 'my "quoted" job')
        assert (shown["StartTime"], shown["StopTime"], shown["IsRunning"]) == (
            sent_start["startTime"],
            sent_stop["stopTime"],
            False,
        )
    assert node_names(meta) == {"node01", "node02"}
    assert (meta["ExitCode"], meta["JobScript"], meta["ClusterId"]) == (0, "noJobSript", "testcluster")
    assert (meta["UserId"], meta["GroupId"], meta["NumTasks"], meta["TasksPerNode"]) == (1001, 100, 8, 4)

    # Slurm retries and duplicate hooks change nothing
    assert (await replay(client, START, key)).status_code == 200
    assert (await replay(client, STOP, key)).status_code == 200
    again = (await client.get("/api/job/4242", headers=admin)).json()["Metadata"]
    assert {k: again[k] for k in ("StartTime", "StopTime", "ExitCode")} == {
        k: meta[k] for k in ("StartTime", "StopTime", "ExitCode")
    }


async def test_the_script_without_a_valid_key_gets_nothing_in(client: AsyncTestClient) -> None:
    refused = await replay(client, START, "jp_nope_nope")
    assert refused.status_code == 401
    user_key, _ = await _user_key(client)
    assert (await replay(client, START, user_key)).status_code == 403  # a user key may not start jobs


async def _user_key(client: AsyncTestClient) -> tuple[str, dict[str, str]]:
    admin = await front_end_login(client, "admin", ADMIN_PASSWORD)
    response = await client.post("/api/generateAPIKey?role=user&owner=alice", headers=admin)
    return response.text.strip(), admin


async def test_front_end_login_cookie_carries_username_and_roles(client: AsyncTestClient) -> None:
    cookie = await front_end_login(client, "alice", ALICE_PASSWORD)
    jwt = cookie["Cookie"].removeprefix("Authorization=Bearer ")
    assert {k: claims(jwt)[k] for k in ("Username", "Roles")} == {"Username": "alice", "Roles": ["user"]}
    admin = await front_end_login(client, "admin", ADMIN_PASSWORD)
    admin_claims = claims(admin["Cookie"].removeprefix("Authorization=Bearer "))
    assert admin_claims["Username"] == "admin" and "admin" in admin_claims["Roles"]
    # the cookie alone is the browser's credential
    assert (await client.get("/api/jobs?NumGpus=0,224&NumNodes=1,192", headers=cookie)).status_code == 200
    assert (await client.get("/api/jobs")).status_code == 401


async def test_front_end_logout_body(client: AsyncTestClient) -> None:
    cookie = await front_end_login(client, "alice", ALICE_PASSWORD)
    body = json.dumps({"Username": "alice", "Roles": ["user"]}).encode()
    response = await client.post("/api/logout", content=body, headers={**FRONT_END, **cookie})
    assert response.status_code == 200, response.text
    assert (await client.get("/api/jobs", headers=cookie)).status_code == 401


async def test_front_end_request_access_body(client: AsyncTestClient) -> None:
    body = json.dumps({"username": "dave", "roles": ["user"]}).encode()
    response = await client.post("/api/notify/admin", content=body, headers=FRONT_END)
    assert response.status_code == 200, response.text
    admin = await front_end_login(client, "admin", ADMIN_PASSWORD)
    pending = (await client.get("/api/admin/notifications", headers=admin)).json()
    assert [(p["username"], p["roles"]) for p in pending] == [("dave", ["user"])]


async def test_front_end_tag_bodies(client: AsyncTestClient) -> None:
    key = await slurm_key(client, "job-control")
    assert (await replay(client, START, key)).status_code == 200  # alice's job 4242
    alice = {**FRONT_END, **await front_end_login(client, "alice", ALICE_PASSWORD)}
    added = await client.post("/api/tags/add_tag?job=4242", content=b'{"Name":"rerun"}', headers=alice)
    assert added.status_code == 200, added.text
    [tag] = (await client.get("/api/job/4242", headers=alice)).json()["Metadata"]["Tags"]
    assert (tag["Name"], tag["CreatedBy"]) == ("rerun", "alice")
    # the front end sends back the whole JobTag it was given
    removed = await client.post(
        "/api/tags/remove_tag?job=4242", content=json.dumps(tag).encode(), headers=alice
    )
    assert removed.status_code == 200, removed.text
    assert (await client.get("/api/job/4242", headers=alice)).json()["Metadata"]["Tags"] == []


async def test_front_end_admin_bodies(client: AsyncTestClient) -> None:
    admin = {**FRONT_END, **await front_end_login(client, "admin", ADMIN_PASSWORD)}
    roles = json.dumps({"Username": "alice", "Roles": ["user", "job-control"]}).encode()
    response = await client.patch("/api/config/users/alice", content=roles, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"Username": "alice", "Roles": ["job-control", "user"]}
    # the settings page sends back the whole Configuration it was given
    config = (await client.get("/api/config", headers=admin)).json()
    updated = await client.patch("/api/config/update", content=json.dumps(config).encode(), headers=admin)
    assert updated.status_code == 200, updated.text


FRONT_END_REFUSALS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/login", {"username": 5, "password": "x"}, "Username"),
    ("POST", "/api/login", {"username": "alice", "frontendOnly": True}, "Password"),
    ("POST", "/api/notify/admin", {"roles": ["user"]}, "Username"),
    ("POST", "/api/notify/admin", {"username": "dave", "roles": "user"}, "Roles"),
    ("POST", "/api/logout", {"Username": "alice", "Roles": "user"}, "Roles"),
    ("POST", "/api/tags/add_tag?job=4242", {"name": 5}, "Name"),
    ("POST", "/api/tags/add_tag?job=4242", {"Type": "user"}, "Name"),
    ("PATCH", "/api/config/users/alice", {"Username": "alice"}, "Roles"),
]

SCRIPT_REFUSALS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    (START, {"numNodes": "2"}, "NumNodes"),
    (START, {"Id": None}, "Id"),
    (START, {"startTime": -1}, "StartTime"),
    (START, {"nodeList": "node01|no de02"}, "NodeList"),
    (START, {"isRunning": "true"}, "IsRunning"),
    (STOP, {"exitCode": "0"}, "ExitCode"),
    (STOP, {"stopTime": 1.5}, "StopTime"),
]


async def test_front_end_bodies_with_wrong_types_or_missing_fields_are_a_400_naming_the_field(
    client: AsyncTestClient,
) -> None:
    admin = await front_end_login(client, "admin", ADMIN_PASSWORD)
    for method, path, body, field in FRONT_END_REFUSALS:
        content = json.dumps(body).encode()
        response = await client.request(method, path, content=content, headers={**FRONT_END, **admin})
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["detail"].startswith(f"{field}: "), (path, body, response.json())


async def test_script_bodies_with_wrong_types_or_missing_fields_are_a_400_naming_the_field(
    client: AsyncTestClient,
) -> None:
    key = await slurm_key(client, "job-control")
    for capture, change, field in SCRIPT_REFUSALS:
        body = {k: v for k, v in (json.loads(capture["body"]) | change).items() if v is not None}
        content = json.dumps(body).encode()
        headers = {**capture["headers"], "Content-Length": str(len(content))}
        response = await replay(client, {**capture, "body": content.decode(), "headers": headers}, key)
        assert response.status_code == 400, (change, response.text)
        assert response.json()["detail"].startswith(f"{field}: "), (change, response.json())
    admin = await front_end_login(client, "admin", ADMIN_PASSWORD)
    assert (await client.get("/api/job/4242", headers=admin)).status_code == 404  # nothing was stored
