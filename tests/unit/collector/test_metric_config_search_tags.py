"""GET /api/metric/{id}, GET/PATCH /api/config, search, and tag add/remove."""

from __future__ import annotations

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from seed import add_job, add_samples
from storehelp import db_of

T0 = 1_700_000_400  # on a 600 s boundary


@pytest.fixture
async def tokens(fx_client: AsyncTestClient, fx_store: SqliteStore) -> dict[str, dict[str, str]]:
    db = db_of(fx_store)
    add_job(db, 201, "alice", start=T0, stop=T0 + 1200, nodes=("n1", "n2"), partition="gpu")
    add_job(db, 202, "bob", start=T0, stop=T0 + 60)
    add_samples(db, 201, ("n1", "n2"), T0, 120)
    result = {}
    for name, password in (("alice", "alice-password"), ("bob", "bob-password"), ("admin", ADMIN_PASSWORD)):
        result[name] = {"Authorization": f"Bearer {await login(fx_client, name, password)}"}
    fx_client.cookies.clear()
    return result


async def test_metric_with_agg_fn_and_interval(
    fx_client: AsyncTestClient, tokens: dict[str, dict[str, str]]
) -> None:
    alice = tokens["alice"]
    url = "/api/metric/201?metric=cpu_cores&sampleInterval=600"
    by_fn = {}
    for fn in ("avg", "mean", "min", "max", "sum"):
        response = await fx_client.get(f"{url}&aggFn={fn}", headers=alice)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["Config"]["GUID"] == "cpu_cores" and set(body["Data"]) == {"n1", "n2"}
        by_fn[fn] = [p["_value"] for p in body["Data"]["n1"]]
    # n1's cores cycle 0..7, sample i at T0 + 10 i: 60 samples per 600 s bucket
    sums = [sum(i % 8 for i in range(b * 60, (b + 1) * 60)) for b in range(2)]
    assert by_fn["avg"] == by_fn["mean"] == pytest.approx([s / 60 for s in sums])
    assert by_fn["min"] == [0, 0] and by_fn["max"] == [7, 7] and by_fn["sum"] == sums
    narrowed = (await fx_client.get(url + "&node=n2", headers=alice)).json()
    assert set(narrowed["Data"]) == {"n2"}
    assert narrowed["Data"]["n2"][0]["_value"] == pytest.approx(sums[0] / 60 + 1)
    default = (await fx_client.get("/api/metric/201?metric=mem_current_bytes", headers=alice)).json()
    assert default["Config"]["AggFn"] == "mean" and len(default["Data"]["n1"]) == 120  # 10 s tick


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("metric=nope", "metric"),
        ("metric=cpu_cores&aggFn=median", "aggFn"),
        ("metric=cpu_cores&sampleInterval=-5", "sampleInterval"),
        ("metric=cpu_cores&sampleInterval=abc", "sampleInterval"),
        ("", "metric"),
    ],
)
async def test_metric_bad_input(
    fx_client: AsyncTestClient, tokens: dict[str, dict[str, str]], query: str, name: str
) -> None:
    response = await fx_client.get(f"/api/metric/201?{query}", headers=tokens["alice"])
    assert response.status_code == 400 and name in response.text, response.text


async def test_metric_access(fx_client: AsyncTestClient, tokens: dict[str, dict[str, str]]) -> None:
    assert (await fx_client.get("/api/metric/201?metric=cpu_cores")).status_code == 401
    other = await fx_client.get("/api/metric/201?metric=cpu_cores", headers=tokens["bob"])
    assert other.status_code == 404
    assert (
        await fx_client.get("/api/metric/201?metric=cpu_cores", headers=tokens["admin"])
    ).status_code == 200


async def test_config_catalogue_and_update(
    fx_client: AsyncTestClient, tokens: dict[str, dict[str, str]]
) -> None:
    assert (await fx_client.get("/api/config")).status_code == 401
    assert (await fx_client.get("/api/config", headers=tokens["alice"])).status_code == 403
    config = (await fx_client.get("/api/config", headers=tokens["admin"])).json()
    metrics = {m["GUID"]: m for m in config["Metrics"]}
    assert len(metrics) == 16
    assert metrics["mem_current_bytes"]["Unit"] == "B" and metrics["gpu_util_percent"]["Unit"] == "%"
    # Type is JobMon's collection granularity: every jobpulse series is per node; categories apart
    assert {m["Type"] for m in metrics.values()} == {"node"} and metrics["io_read_bytes"]["Categories"] == [
        "io"
    ]
    assert set(config["Partitions"]) == {"gpu", "cpu"}  # as seen in jobs, every metric
    assert len(config["Partitions"]["gpu"]["Metrics"]) == 16
    per_thread = [{**metrics["cpu_cores"], "Type": "cpu"}]  # JobMon's per-thread granularity: not ours
    refused = await fx_client.patch(
        "/api/config/update", json={"Metrics": per_thread}, headers=tokens["admin"]
    )
    assert refused.status_code == 400 and "Metrics[0].Type" in refused.text
    edited = [dict(m) for m in config["Metrics"] if m["GUID"] in ("cpu_cores", "mem_current_bytes")]
    edited[0]["DisplayName"] = "Cores"
    body = {"Metrics": edited, "Partitions": {"gpu": {"MaxTime": 86400, "Metrics": ["cpu_cores"]}}}
    response = await fx_client.patch("/api/config/update", json=body, headers=tokens["admin"])
    assert response.status_code == 200, response.text
    after = (await fx_client.get("/api/config", headers=tokens["admin"])).json()
    assert {m["GUID"] for m in after["Metrics"]} == {"cpu_cores", "mem_current_bytes"}
    assert after["Partitions"]["gpu"] == {"MaxTime": 86400, "Metrics": ["cpu_cores"], "VirtualPartitions": {}}
    job = (await fx_client.get("/api/job/201", headers=tokens["alice"])).json()
    assert {m["Config"]["GUID"] for m in job["MetricData"]} == {"cpu_cores", "mem_current_bytes"}
    assert (await fx_client.get("/api/metric/201?metric=pids", headers=tokens["alice"])).status_code == 400
    audit = db_of(fx_client.app.state.store).execute("SELECT actor, action FROM audit_log").fetchall()
    assert ("admin", "update_config") in [tuple(r) for r in audit]


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"Metrics": [{"GUID": "x", "Measurement": "nope"}]}, "Measurement"),
        ({"Metrics": [{"GUID": "x", "Measurement": "pids", "AggFn": "median"}]}, "AggFn"),
        ({"Metrics": [{"GUID": "x", "Measurement": "pids"}, {"GUID": "x", "Measurement": "pids"}]}, "GUID"),
        ({"Metrics": []}, "Metrics"),
        ({"Partitions": {"gpu": {"Metrics": ["unknown"]}}}, "Partitions"),
        ({"Metrics": [{"Measurement": "pids"}]}, "GUID"),
        ({"Partitions": {"gpu": {"MaxTime": "long"}}}, "MaxTime"),
    ],
)
async def test_config_update_is_validated(
    fx_client: AsyncTestClient, tokens: dict[str, dict[str, str]], body: dict[str, object], name: str
) -> None:
    response = await fx_client.patch("/api/config/update", json=body, headers=tokens["admin"])
    assert response.status_code == 400 and name in response.text, response.text
    assert (
        await fx_client.patch("/api/config/update", json=body, headers=tokens["alice"])
    ).status_code == 403


async def test_search(fx_client: AsyncTestClient, tokens: dict[str, dict[str, str]]) -> None:
    alice, admin = tokens["alice"], tokens["admin"]
    response = await fx_client.get("/api/search/all/201", headers=alice)
    assert response.status_code == 200 and response.text == "job:201"
    assert response.headers["content-type"].startswith("text/plain")
    assert (await fx_client.get("/api/search/all/alice", headers=alice)).text == "user:alice"
    assert (await fx_client.get("/api/search/all/202", headers=alice)).status_code == 404  # bob's job
    assert (await fx_client.get("/api/search/all/bob", headers=alice)).status_code == 404
    assert (await fx_client.get("/api/search/all/bob", headers=admin)).text == "user:bob"
    assert (await fx_client.get("/api/search/all/202", headers=admin)).text == "job:202"
    assert (await fx_client.get("/api/search/all/x")).status_code == 401
    assert (
        await fx_client.get("/api/search/all/%C2%B2", headers=alice)
    ).status_code == 404  # '²' (fuzz find)
    assert (await fx_client.get("/api/search/user/o", headers=admin)).json() == ["bob"]
    assert (
        await fx_client.get("/api/search/user/%25", headers=admin)
    ).json() is None  # LIKE wildcards are literal; nothing found is null, as JobMon's page expects
    assert (await fx_client.get("/api/search/user/o", headers=alice)).status_code == 403


async def test_tags_add_remove_and_access(
    fx_client: AsyncTestClient, tokens: dict[str, dict[str, str]]
) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    added = await fx_client.post("/api/tags/add_tag?job=201", json={"Name": "keep"}, headers=alice)
    assert added.status_code == 200, added.text
    tag = added.json()
    assert tag["Name"] == "keep" and tag["Type"] == "user" and tag["CreatedBy"] == "alice" and tag["Id"] > 0
    job = (await fx_client.get("/api/job/201", headers=alice)).json()
    assert [t["Name"] for t in job["Metadata"]["Tags"]] == ["keep"]
    listed = (await fx_client.get(f"/api/jobs?Tags={tag['Id']}", headers=alice)).json()
    assert [j["Id"] for j in listed["Jobs"]] == [201]
    assert (
        await fx_client.post("/api/tags/add_tag?job=201", json={"Name": "x"}, headers=bob)
    ).status_code == 404
    assert (await fx_client.post("/api/tags/add_tag?job=201", json={"Name": "x"})).status_code == 401
    assert (
        await fx_client.post("/api/tags/add_tag?job=201", json={"Name": ""}, headers=alice)
    ).status_code == 400
    assert (
        await fx_client.post("/api/tags/add_tag?job=abc", json={"Name": "x"}, headers=alice)
    ).status_code == 400
    assert (await fx_client.post("/api/tags/add_tag", json={"Name": "x"}, headers=alice)).status_code == 400
    assert (
        await fx_client.post("/api/tags/add_tag?job=201", json={"Name": 5}, headers=alice)
    ).status_code == 400
    removed = await fx_client.post("/api/tags/remove_tag?job=201", json={"Name": "keep"}, headers=alice)
    assert removed.status_code == 200
    job = (await fx_client.get("/api/job/201", headers=alice)).json()
    assert job["Metadata"]["Tags"] == []
    again = await fx_client.post("/api/tags/remove_tag?job=201", json={"Name": "keep"}, headers=alice)
    assert again.status_code == 404


async def test_job_control_keys_cannot_read_job_data(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    """The Slurm hooks' role may start and stop jobs, nothing else: every job-data route is 403."""
    from jobpulse.collector.store import users

    add_job(db_of(fx_store), 401, "alice", start=T0, stop=T0 + 60)
    key, _ = users.create_api_key(db_of(fx_store), "service:slurm", "job-control", "hooks")
    headers = {"X-API-Key": key}
    for method, url in (
        ("GET", "/api/jobs"),
        ("GET", "/api/job/401"),
        ("GET", "/api/metric/401?metric=cpu_cores"),
        ("GET", "/api/search/all/401"),
        ("GET", "/api/search/user/a"),
        ("GET", "/api/config"),
        ("POST", "/api/tags/add_tag?job=401"),
    ):
        response = await fx_client.request(
            method, url, headers=headers, json={"Name": "x"} if method == "POST" else None
        )
        assert response.status_code == 403, (url, response.text)
