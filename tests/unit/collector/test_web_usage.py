"""The web interface's usage view, ``GET /ui/api/usage`` (issue 19), through real HTTP over a real SQLite
file: usage put in by the accounting ingest (an ingest key an admin made) and by monitored jobs; what an
admin sees, what a user sees (their own only, whatever they ask), and bad parameters."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.domain.jobs import JobFacts
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient

GIB = 1024**3
JANUARY = {"since": "2025-01-01", "until": "2025-01-31"}


def record(job: str, user: str, account: str, submit: str, cpu_hours: float, **over: Any) -> dict[str, Any]:
    """One sacct record as the exporter sends it, started 10 minutes after submit, running an hour."""
    day, hour = submit.split(" ")
    h = int(hour[:2])
    base = {
        "JobID": job,
        "User": user,
        "Account": account,
        "Partition": "compute",
        "State": "COMPLETED",
        "QOS": "normal",
        "Submit": submit,
        "Start": f"{day}T{h:02d}:10:00",
        "End": f"{day}T{h + 1:02d}:10:00",
        "CPUHours": cpu_hours,
        "GPUHours": 0.0,
        "AllocCPUS": 4,
        "AllocGPUS": 0,
        "AllocNodes": 1,
        "NodeList": "node001",
    }
    base.update(over)
    return base


# Mondays of January 2025's weeks: 2024-12-30, 01-06, 01-13, 01-20, 01-27
JOBS = [
    record("1", "alice", "proj1", "2025-01-02 10:00:00", 4.0),  # week of 12-30
    record("2", "alice", "proj1", "2025-01-14 10:00:00", 6.0),  # week of 01-13
    record("3", "bob", "proj2", "2025-01-14 12:00:00", 10.0, GPUHours=2.0, AllocGPUS=2),  # week of 01-13
    record("4", "bob", "proj1", "2025-01-28 08:00:00", 1.0),  # week of 01-27
    record("5", "carol", "proj2", "2025-02-03 08:00:00", 50.0),  # February: outside the window
]


@pytest.fixture
async def fx_admin(fx_client: AsyncTestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await login(fx_client, 'admin', ADMIN_PASSWORD)}"}


@pytest.fixture
async def fx_alice(fx_client: AsyncTestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await login(fx_client, 'alice', 'alice-password')}"}


@pytest.fixture
async def fx_ingest(fx_client: AsyncTestClient, fx_admin: dict[str, str]) -> dict[str, str]:
    """An ingest key, made as an admin makes one, and January's records sent with it."""
    made = await fx_client.post(
        "/api/generateAPIKey",
        json={"role": "ingest", "service": "exporter", "name": "sacct exporter"},
        headers={**fx_admin, "Accept": "application/json"},
    )
    assert made.status_code == 200, made.text
    key = {"X-API-Key": made.json()["key"]}
    sent = await fx_client.post("/api/data/ingest", json={"hostname": "c1", "jobs": JOBS}, headers=key)
    assert sent.status_code == 200 and sent.json()["new"] == len(JOBS), sent.text
    return key


async def usage(client: AsyncTestClient, headers: dict[str, str], **params: str) -> Any:
    response = await client.get("/ui/api/usage", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def series(body: dict[str, Any]) -> dict[str, list[float]]:
    return {s["key"]: s["cpu_hours"] for s in body["series"]}


async def test_an_admin_sees_everyones_usage_per_week_and_user(
    fx_client: AsyncTestClient, fx_admin: dict[str, str], fx_ingest: dict[str, str]
) -> None:
    body = await usage(fx_client, fx_admin, **JANUARY, group="week", by="user")
    assert body["periods"] == ["2024-12-30", "2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27"]
    assert body["times"][0] == 1735516800  # 2024-12-30 00:00 UTC, uPlot's x
    assert series(body) == {"bob": [0, 0, 10.0, 0, 1.0], "alice": [4.0, 0, 6.0, 0, 0]}
    assert [s["key"] for s in body["series"]] == ["bob", "alice"]  # biggest first
    assert next(s for s in body["series"] if s["key"] == "bob")["gpu_hours"] == [0, 0, 2.0, 0, 0]
    rows = {r["key"]: r for r in body["rows"]}
    assert [r["key"] for r in body["rows"]] == ["bob", "alice"]  # carol submitted in February
    assert (rows["bob"]["jobs"], rows["bob"]["cpu_hours"], rows["bob"]["gpu_hours"]) == (2, 11.0, 2.0)
    assert (rows["alice"]["jobs"], rows["alice"]["cpu_hours"]) == (2, 10.0)
    assert rows["alice"]["wait_mean_s"] == 600.0  # every job started 10 minutes after it was submitted
    assert rows["alice"]["monitored_jobs"] == 0 and rows["alice"]["cpu_efficiency"] is None
    assert body["totals"] == {
        "jobs": 4,
        "cpu_hours": 21.0,
        "gpu_hours": 2.0,
        "users": 2,
        "wait_mean_s": 600.0,
    }
    assert body["only_user"] is None and body["clusters"] == ["c1"]
    assert body["options"]["users"] == ["alice", "bob"] and body["options"]["accounts"] == ["proj1", "proj2"]

    by_account = await usage(fx_client, fx_admin, **JANUARY, group="month", by="account")
    assert by_account["periods"] == ["2025-01-01"]
    assert series(by_account) == {"proj1": [11.0], "proj2": [10.0]}
    rows = {r["key"]: r for r in by_account["rows"]}
    assert rows["proj1"]["users"] == 2 and rows["proj2"]["users"] == 1  # alice and bob; bob

    filtered = await usage(fx_client, fx_admin, **JANUARY, by="user", account="proj1")
    assert series(filtered) == {"alice": [4.0, 0, 6.0, 0, 0], "bob": [0, 0, 0, 0, 1.0]}
    one = await usage(fx_client, fx_admin, **JANUARY, user="bob", cluster="c1", partition="compute")
    assert [r["key"] for r in one["rows"]] == ["bob"] and one["totals"]["cpu_hours"] == 11.0
    elsewhere = await usage(fx_client, fx_admin, **JANUARY, cluster="c2")
    assert elsewhere["rows"] == [] and elsewhere["series"] == [] and elsewhere["totals"]["jobs"] == 0


async def test_a_user_sees_only_their_own_usage_whatever_they_ask(
    fx_client: AsyncTestClient, fx_ingest: dict[str, str], fx_alice: dict[str, str]
) -> None:
    for asked in ({"by": "user"}, {"by": "account"}, {"by": "user", "user": "bob"}, {"account": "proj2"}):
        response = await fx_client.get("/ui/api/usage", params={**JANUARY, **asked}, headers=fx_alice)
        assert response.status_code == 200, response.text
        assert "bob" not in response.text and "carol" not in response.text, asked
        body = response.json()
        assert body["only_user"] == "alice"
        assert body["totals"]["cpu_hours"] <= 10.0 and body["options"]["users"] == ["alice"]
    mine = await usage(fx_client, fx_alice, **JANUARY, by="account")
    assert series(mine) == {"proj1": [4.0, 0, 6.0, 0, 0]}  # bob's hours on proj1 are not in it
    assert [(r["key"], r["jobs"], r["users"]) for r in mine["rows"]] == [("proj1", 2, 1)]
    assert mine["options"]["accounts"] == ["proj1"]


async def test_efficiency_of_monitored_jobs_per_user(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_admin: dict[str, str]
) -> None:
    """Jobs agents saw count by their allocation; their summaries give the efficiency columns."""
    t0 = 1_736_848_800  # 2025-01-14 10:00 UTC
    runs = {}
    for job, user in ((77, "alice"), (78, "alice"), (79, "bob")):
        facts = JobFacts(user_name=user, account="proj1", partition="compute", cpus=8, num_nodes=1)
        await fx_store.record_start("c1", job, t0, facts, "api")
        run = await fx_store.record_stop("c1", job, t0 + 2 * 3600, "COMPLETED", 0, "api")
        assert run is not None
        runs[job] = run.run_id
    summary = {"cpu_efficiency": 0.5, "mem_peak_bytes": GIB, "mem_limit_bytes": 4 * GIB}
    await fx_store.save_summary(runs[77], 0.0, summary, [])  # no allocated core-seconds: its 16 CPU-hours
    await fx_store.save_summary(
        runs[78],
        0.0,
        {**summary, "cpu_efficiency": 0.25, "mem_peak_bytes": 3 * GIB, "alloc_core_seconds": 48 * 3600},
        [],
    )
    body = await usage(fx_client, fx_admin, **JANUARY, by="user")
    rows = {r["key"]: r for r in body["rows"]}
    assert rows["alice"]["cpu_hours"] == 32.0 and rows["alice"]["jobs"] == 2  # 8 CPUs x 2 h, twice
    assert rows["alice"]["monitored_jobs"] == 2
    # used of allocated core-seconds: 0.5 of 16 core-hours and 0.25 of 48 is 20 of 64
    assert rows["alice"]["cpu_efficiency"] == pytest.approx(20 / 64, abs=1e-3)  # sent rounded
    assert rows["alice"]["mem_efficiency"] == pytest.approx(0.5)  # 1/4 and 3/4 of the limit
    assert rows["bob"]["monitored_jobs"] == 0 and rows["bob"]["cpu_efficiency"] is None  # no summary yet
    assert series(body)["alice"] == [0, 0, 32.0, 0, 0]


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"group": "fortnight"}, "group"),
        ({"by": "partition"}, "by"),
        ({"since": "01/01/2025"}, "since"),
        ({"until": "2025-13-01"}, "until"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "until"),
        ({"since": "2015-01-01", "until": "2025-01-01"}, "since"),
        ({"cluster": "c1\x01"}, "cluster"),
        ({"user": "x" * 300}, "user"),
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it(
    fx_client: AsyncTestClient, fx_admin: dict[str, str], params: dict[str, str], key: str
) -> None:
    response = await fx_client.get("/ui/api/usage", params=params, headers=fx_admin)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["key"] == key


async def test_the_usage_view_needs_a_person(fx_client: AsyncTestClient, fx_ingest: dict[str, str]) -> None:
    fx_client.cookies.clear()  # the admin fixture's session cookie
    assert (await fx_client.get("/ui/api/usage")).status_code == 401
    assert (await fx_client.get("/ui/api/usage", headers=fx_ingest)).status_code == 403  # an ingest key
