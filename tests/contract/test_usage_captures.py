"""Contract tests of the usage history dialect (seed 000, issue 18): what its real clients send and read.

The Slurm Usage History exporter's requests are replayed byte for byte from
tests/fixtures/clients/requests.jsonl (its health check without a key, then two weeks of ingest; only the
placeholder key is replaced by a real ingest key, made as an admin makes it:
``jobpulse-collector create-api-key --role ingest --service exporter``). Then what the exporter reads
(``status``, ``message``) and what the dashboard front end reads of the same data (its types/index.ts:
metadata, charts, filter, stats), and the exporter's next run re-sending the same weeks."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jobpulse.collector import cli
from jobpulse.collector.app import create_app
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.auth.passwords import hash_password
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from support import FIXTURES
from usage_chart_keys import CHART_KEYS

CAPTURES = [json.loads(line) for line in (FIXTURES / "clients" / "requests.jsonl").read_text().splitlines()]
HEALTH = next(c for c in CAPTURES if c["client"] == "usagehistory-exporter-health")
INGESTS = [c for c in CAPTURES if c["client"].startswith("usagehistory-exporter-ingest")]
PLACEHOLDER_KEY = "example-key"
ADMIN_PASSWORD = "admin-contract-pw"


@functools.cache
def _hash(password: str) -> str:
    return hash_password(password)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    settings = CollectorSettings(state_dir=tmp_path, admin_password=ADMIN_PASSWORD)
    store = SqliteStore(settings.database_path)
    store.open()
    await ensure_admin(store, settings)
    await store.save_user("user1", ["user"], _hash("user1-password"), actor="test")
    try:
        async with AsyncTestClient(app=create_app(store, settings)) as test_client:
            yield test_client
    finally:
        store.close()


async def ingest_key(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """As an admin makes it, on the collector host (the CLI, in a thread: it runs its own event loop)."""
    capsys.readouterr()
    args = ["create-api-key", "--state-dir", str(state_dir), "--role", "ingest", "--service", "exporter"]
    assert await asyncio.to_thread(cli.main, args) == 0
    return capsys.readouterr().out.strip()


async def replay(client: AsyncTestClient, capture: dict[str, Any], key: str | None = None) -> Any:
    body = capture["body"].encode()
    headers = dict(capture["headers"])
    if body:
        assert int(headers["Content-Length"]) == len(body)  # the capture is whole
    if key is not None:
        assert headers["X-API-Key"] == PLACEHOLDER_KEY
        headers["X-API-Key"] = key
    return await client.request(capture["method"], capture["path"], content=body, headers=headers)


async def login(client: AsyncTestClient, username: str, password: str) -> dict[str, str]:
    """The dashboard's login: jobpulse's form at /saml/login; the browser keeps the cookie."""
    form = {"username": username, "password": password, "redirect_to": "/"}
    response = await client.post("/saml/login", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    client.cookies.clear()
    return {"Cookie": response.headers["set-cookie"].split(";", 1)[0]}


async def test_exporter_replayed_byte_for_byte_and_what_the_dashboard_reads(
    client: AsyncTestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    health = await replay(client, HEALTH)
    assert health.status_code == 200 and health.json()["status"] == "healthy"  # the exporter reads status
    key = await ingest_key(tmp_path, capsys)
    for capture in INGESTS:
        response = await replay(client, capture, key)
        assert response.status_code == 200, response.text
        assert response.json()["message"].startswith("Ingested 4 jobs for cluster testcluster")
    # the next cron run re-sends the same weeks
    again = await replay(client, INGESTS[0], key)
    assert again.json()["unchanged"] == 4 and again.json()["new"] == 0

    admin = await login(client, "admin", ADMIN_PASSWORD)
    me = (await client.get("/saml/me", headers=admin)).json()
    assert me["username"] == "admin" and me["is_admin"] is True
    meta = (await client.get("/api/dashboard/metadata", headers=admin)).json()
    assert meta["hostnames"] == ["testcluster"]
    assert meta["date_ranges"]["testcluster"] == {"min_date": "2025-01-01", "max_date": "2025-01-08"}
    assert meta["states"]["testcluster"] == ["CANCELLED", "COMPLETED", "FAILED", "TIMEOUT"]
    assert meta["accounts"]["testcluster"] == ["acct0", "acct1"]
    body = {"hostname": "testcluster", "start_date": "2024-12-09", "end_date": "2025-01-08",
            "period_type": "week", "account_segments": 3}  # fmt: skip
    charts = (await client.post("/api/dashboard/charts", json=body, headers=admin)).json()
    assert charts["summary"] == {
        "total_jobs": 8,
        "total_cpu_hours": 96.0,
        "total_gpu_hours": 12.0,
        "total_users": 3,
    }
    assert len(charts["cpu_usage_over_time"]["x"]) == 2 and sum(charts["jobs_over_time"]["y"]) == 8
    assert dict(zip(charts["jobs_by_state"]["labels"], charts["jobs_by_state"]["values"], strict=True)) == {
        "CANCELLED": 2, "COMPLETED": 2, "FAILED": 2, "TIMEOUT": 2,
    }  # fmt: skip
    assert charts["waiting_times_trends"]["stats"]["mean"] == [0.167, 0.167]  # 10 minutes
    stats = (await client.get("/api/dashboard/stats/testcluster", headers=admin)).json()
    assert stats["partitions"] == ["compute", "gpu"] and stats["total_jobs"] == 8
    filtered = await client.post(
        "/api/dashboard/filter", json={"hostname": "testcluster", "users": ["user1"]}, headers=admin
    )
    assert [r["JobID"] for r in filtered.json()["data"]] == ["250108001", "250101001"]
    assert filtered.json()["data"][0]["NodeList"] == "node02"

    user1 = await login(client, "user1", "user1-password")
    own = (await client.post("/api/dashboard/charts", json=body, headers=user1)).json()
    assert own["summary"]["total_jobs"] == 2 and own["summary"]["total_users"] == 1


async def test_the_exporter_without_a_key_or_with_a_wrong_one(client: AsyncTestClient) -> None:
    capture = dict(INGESTS[0])
    headers = {k: v for k, v in capture["headers"].items() if k != "X-API-Key"}
    response = await client.request(
        "POST", capture["path"], content=capture["body"].encode(), headers=headers
    )
    assert response.status_code == 401  # fatal for the exporter, as it must be: no retry on 401
    wrong = await replay(client, capture, "jp_0000000000_notakey")
    assert wrong.status_code == 401


async def test_every_chart_of_the_dashboard_from_the_exporters_records(
    client: AsyncTestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exporter's replayed records (8 jobs of 8 CPUs, 4 of them with 2 GPUs; node lists node[01-02],
    node02, node03) as the dashboard's charts draw them, with and without Color By."""
    key = await ingest_key(tmp_path, capsys)
    for capture in INGESTS:
        assert (await replay(client, capture, key)).status_code == 200
    admin = await login(client, "admin", ADMIN_PASSWORD)
    body = {"hostname": "testcluster", "start_date": "2024-12-09", "end_date": "2025-01-08",
            "period_type": "week", "account_segments": 3}  # fmt: skip
    charts = (await client.post("/api/dashboard/charts", json=body, headers=admin)).json()
    assert set(charts) == CHART_KEYS
    assert charts["cpus_per_job"] == {"x": [8], "y": [8], "type": "histogram"}
    assert charts["gpus_per_job"] == {"x": [2], "y": [4], "type": "histogram"}
    # The exporter sends AllocNodes 1 for "node[01-02]" (it splits NodeList on commas): counted as 2 nodes
    assert charts["nodes_per_job"] == {"x": [1, 2], "y": [4, 4], "type": "histogram"}
    # 12 CPU-hours a job, shared by the nodes of its list: node[01-02] four times, node02 and node03 twice
    node = charts["node_cpu_usage"]
    assert (node["x"], node["y"]) == (["node01", "node02", "node03"], [24.0, 48.0, 24.0])
    assert (charts["node_gpu_usage"]["x"], charts["node_gpu_usage"]["y"]) == (
        ["node01", "node02"],
        [3.0, 9.0],
    )
    assert charts["user_activity_frequency"]["total_users"] == 3 and charts["user_activity_frequency"][
        "y"
    ] == [0, 3]
    for key_ in ("waiting_times_stacked", "job_duration_stacked"):
        names = [s["name"] for s in charts[key_]["series"]]
        assert names == ["<1m", "1-10m", "10-60m", "1-4h", "4-12h", "12-24h", "1-3d", ">3d"]
        assert len(charts[key_]["x"]) == 2
    colored = (
        await client.post("/api/dashboard/charts", json={**body, "color_by": "State"}, headers=admin)
    ).json()
    pie = colored["jobs_distribution"]
    assert pie["type"] == "pie" and sorted(pie["labels"]) == ["CANCELLED", "COMPLETED", "FAILED", "TIMEOUT"]
    assert sum(pie["values"]) == 8
    assert {s["name"] for s in colored["cpu_usage_over_time"]["series"]} == set(pie["labels"])
