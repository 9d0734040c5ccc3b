"""GET /api/jobs and GET /api/job/{id}: filters, paging, ownership, series, raw and CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.store import tags
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from seed import add_job, add_samples
from storehelp import db_of

T0 = 1_700_000_000


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seeded(fx_store: SqliteStore) -> SqliteStore:
    db = db_of(fx_store)
    run = add_job(db, 101, "alice", start=T0, stop=T0 + 6000, nodes=("n1", "n2"), partition="gpu", gpus=2)
    add_job(db, 102, "alice", start=T0 + 100, stop=None, partition="cpu")
    add_job(db, 103, "bob", start=T0 + 200, stop=T0 + 260, state="FAILED", account="other")
    add_samples(db, 101, ("n1", "n2"), T0, 600)  # 10 s tick over 6000 s
    add_samples(db, 103, ("n1",), T0 + 200, 6)
    tags.add_tag(db, run, "low_cpu", "finding", "summary")
    return fx_store


@pytest.fixture
async def alice(fx_client: AsyncTestClient, seeded: SqliteStore) -> dict[str, str]:
    token = await login(fx_client, "alice", "alice-password")
    fx_client.cookies.clear()
    return _bearer(token)


@pytest.fixture
async def admin(fx_client: AsyncTestClient, seeded: SqliteStore) -> dict[str, str]:
    token = await login(fx_client, "admin", ADMIN_PASSWORD)
    fx_client.cookies.clear()
    return _bearer(token)


async def _ids(client: AsyncTestClient, headers: dict[str, str], query: str = "") -> list[int]:
    response = await client.get("/api/jobs" + query, headers=headers)
    assert response.status_code == 200, response.text
    return [j["Id"] for j in response.json()["Jobs"]]


async def test_users_see_only_their_own_jobs(
    fx_client: AsyncTestClient, alice: dict[str, str], admin: dict[str, str]
) -> None:
    assert await _ids(fx_client, alice) == [102, 101]
    assert await _ids(fx_client, alice, "?UserName=bob") == []
    assert await _ids(fx_client, admin) == [103, 102, 101]
    assert await _ids(fx_client, admin, "?UserName=bob") == [103]
    assert (await fx_client.get("/api/jobs")).status_code == 401


async def test_job_list_shape_filters_sorting_and_paging(
    fx_client: AsyncTestClient, admin: dict[str, str]
) -> None:
    body = (await fx_client.get("/api/jobs?limit=2", headers=admin)).json()
    assert body["Total"] == 3 and len(body["Jobs"]) == 2
    assert set(body["Config"]) == {"RadarChartMetrics", "Partitions", "Tags"}
    assert set(body["Config"]["Partitions"]) == {"gpu", "cpu"}
    assert [t["Name"] for t in body["Config"]["Tags"]] == ["low_cpu"]
    job = next(j for j in body["Jobs"] if j["Id"] == 102)
    assert job["IsRunning"] is True and job["StopTime"] == 0 and job["Nodes"] == [{"Name": "n1"}]
    page2 = (await fx_client.get("/api/jobs?limit=2&offset=2", headers=admin)).json()
    assert page2["Total"] == 3 and [j["Id"] for j in page2["Jobs"]] == [101]
    assert await _ids(fx_client, admin, "?Partition=gpu") == [101]
    assert await _ids(fx_client, admin, "?Account=other") == [103]
    assert await _ids(fx_client, admin, "?State=FAILED") == [103]
    assert await _ids(fx_client, admin, "?Node=n2") == [101]
    assert await _ids(fx_client, admin, "?IsRunning=true") == [102]
    assert await _ids(fx_client, admin, f"?Time={T0 + 50},{T0 + 150}") == [102]
    assert await _ids(fx_client, admin, f"?Time={T0 + 150},") == [103]
    assert await _ids(fx_client, admin, "?MinDuration=1000&IsRunning=false") == [101]
    assert await _ids(fx_client, admin, "?MaxDuration=100") == [103]
    assert await _ids(fx_client, admin, "?NumGpus=1,") == [101]
    assert await _ids(fx_client, admin, "?Findings=low_cpu") == [101]
    tag_id = body["Config"]["Tags"][0]["Id"]
    assert await _ids(fx_client, admin, f"?Tags={tag_id}") == [101]
    assert await _ids(fx_client, admin, "?sort=Id&order=asc") == [101, 102, 103]
    assert await _ids(fx_client, admin, "?sort=Duration&order=asc&IsRunning=false") == [103, 101]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("UserId=abc", "UserId"),
        ("NumNodes=1", "NumNodes"),
        ("Time=a,b", "Time"),
        ("Tags=x", "Tags"),
        ("sort=Bogus", "sort"),
        ("limit=0", "limit"),
        ("IsRunning=maybe", "IsRunning"),
        ("MinDuration=-1", "MinDuration"),
    ],
)
async def test_bad_filters_are_400_naming_the_parameter(
    fx_client: AsyncTestClient, admin: dict[str, str], query: str, name: str
) -> None:
    response = await fx_client.get(f"/api/jobs?{query}", headers=admin)
    assert response.status_code == 400, response.text
    assert name in response.text


async def test_job_data_has_metrics_per_node_at_about_200_points(
    fx_client: AsyncTestClient, alice: dict[str, str]
) -> None:
    response = await fx_client.get("/api/job/101", headers=alice)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["Metadata"]["Id"] == 101 and [t["Name"] for t in body["Tags"]] == ["low_cpu"]
    # 6000 s at a 10 s tick is 600 points: JobMon's rule picks 30 s (200 points)
    assert body["SampleInterval"] == 30 and body["SampleIntervals"] == [10, 30]
    metrics = {m["Config"]["GUID"]: m for m in body["MetricData"]}
    assert "gpu_util_percent" not in metrics  # never measured: no empty series
    cpu = metrics["cpu_cores"]
    assert cpu["Config"]["Unit"] == "" and cpu["Config"]["DisplayName"] == "CPU cores used"
    assert set(cpu["Data"]) == {"n1", "n2"}
    points = cpu["Data"]["n1"]
    assert len(points) == 201  # T0 is not on a 30 s boundary: a partial bucket at each end
    # buckets start on the interval; the second holds samples 1..3 (cores 1, 2, 3): mean 2
    assert points[0] == {"_time": "2023-11-14T22:13:00Z", "_value": 0.0, "hostname": "n1"}
    assert points[1] == {"_time": "2023-11-14T22:13:30Z", "_value": 2.0, "hostname": "n1"}
    assert "mem_limit_bytes" not in metrics  # only +Inf (unlimited): nothing finite to chart


async def test_sample_interval_node_and_raw(fx_client: AsyncTestClient, alice: dict[str, str]) -> None:
    body = (await fx_client.get("/api/job/101?sampleInterval=600&node=n2", headers=alice)).json()
    cpu = {m["Config"]["GUID"]: m for m in body["MetricData"]}["cpu_cores"]
    assert set(cpu["Data"]) == {"n2"} and len(cpu["Data"]["n2"]) == 11 and body["SampleInterval"] == 600
    both = (await fx_client.get("/api/job/101?sampleInterval=600&node=n1|n2", headers=alice)).json()
    assert set({m["Config"]["GUID"]: m for m in both["MetricData"]}["cpu_cores"]["Data"]) == {"n1", "n2"}
    raw = (await fx_client.get("/api/job/101?raw=true&node=n1", headers=alice)).json()
    cpu = {m["Config"]["GUID"]: m for m in raw["MetricData"]}["cpu_cores"]
    assert len(cpu["Data"]["n1"]) == 600
    rows = list(csv.reader(io.StringIO(cpu["RawData"])))
    assert rows[0] == ["_time", "hostname", "_field", "_value"] and len(rows) == 601
    assert rows[2] == ["2023-11-14T22:13:30Z", "n1", "cpu_cores", "1.0"]


async def test_csv_download(fx_client: AsyncTestClient, alice: dict[str, str]) -> None:
    for url, headers in (
        ("/api/job/101?format=csv", alice),
        ("/api/job/101", {**alice, "Accept": "text/csv"}),
    ):
        response = await fx_client.get(url, headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert 'filename="job-101.csv"' in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == 1200 and rows[0]["node"] == "n1" and rows[0]["time"] == "2023-11-14T22:13:20Z"
        assert float(rows[1]["cpu_user_seconds"]) == 7.0 and rows[1]["gpu_util_percent"] == ""


async def test_job_access_and_bad_input(fx_client: AsyncTestClient, alice: dict[str, str]) -> None:
    other = await fx_client.get("/api/job/103", headers=alice)
    missing = await fx_client.get("/api/job/999", headers=alice)
    assert other.status_code == missing.status_code == 404
    assert other.text == "job 103 not found" and other.headers["content-type"].startswith("text/plain")
    assert (await fx_client.get("/api/job/101")).status_code == 401
    for query, name in (
        ("sampleInterval=0", "sampleInterval"),
        ("sampleInterval=x", "sampleInterval"),
        ("raw=perhaps", "raw"),
        ("format=xml", "format"),
    ):
        response = await fx_client.get(f"/api/job/101?{query}", headers=alice)
        assert response.status_code == 400 and name in response.text, (query, response.text)
    for bad in ("abc", "12a", "1_2_3", "%C2%B2", "1__2", "+1"):  # not a job id: a 400 naming it, not a 404
        response = await fx_client.get(f"/api/job/{bad}", headers=alice)
        assert response.status_code == 400 and "id:" in response.json()["detail"], (bad, response.text)


async def test_finished_job_series_are_cached_until_a_late_batch_arrives(
    fx_client: AsyncTestClient, seeded: SqliteStore, alice: dict[str, str]
) -> None:
    from jobpulse.proto.v1 import ingest_pb2 as pb

    def nodes() -> set[str]:
        return set({m["Config"]["GUID"]: m for m in body["MetricData"]}["cpu_cores"]["Data"])

    body = (await fx_client.get("/api/job/101", headers=alice)).json()
    assert nodes() == {"n1", "n2"}
    add_samples(db_of(seeded), 101, ("n9",), T0 + 60, 3)  # stored behind the API's back
    body = (await fx_client.get("/api/job/101", headers=alice)).json()
    assert nodes() == {"n1", "n2"}  # served from the cache
    late = pb.Batch(seq=1)
    late.jobs.job_id.append("101")
    late.jobs.step.append("")
    late.jobs.time_ms.append((T0 + 90) * 1000)
    for column in JOB_SAMPLE_COLUMNS:
        getattr(late.jobs, column).append(1.0)
    fx_client.app.state.live.on_batches("n9", [late])  # the ingest hook: a replayed batch for job 101
    body = (await fx_client.get("/api/job/101", headers=alice)).json()
    assert nodes() == {"n1", "n2", "n9"}
    raw = (await fx_client.get("/api/job/101?raw=true&node=n9", headers=alice)).json()  # never cached
    assert len({m["Config"]["GUID"]: m for m in raw["MetricData"]}["cpu_cores"]["Data"]["n9"]) == 3


async def test_cached_job_answer_is_the_jobmon_mapping_byte_for_byte_with_current_tags(
    fx_client: AsyncTestClient, seeded: SqliteStore, alice: dict[str, str]
) -> None:
    """A finished job's series are encoded once and copied into later answers: those answers are the bytes
    JobData itself encodes to, tags (which change) are current in each, and another user still gets a 404."""
    import msgspec
    from jobpulse.collector.api.jobmon.jobdata import job_data
    from jobpulse.collector.domain.principals import Principal

    first = await fx_client.get("/api/job/101", headers=alice)
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/json")
    assert first.headers["content-encoding"] == "gzip"  # the client accepts it (httpx: gzip, deflate)
    again = await fx_client.get("/api/job/101", headers=alice)
    assert again.content == first.content
    plain = await fx_client.get("/api/job/101", headers={**alice, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == first.content
    page = await fx_client.app.state.jobs.job_page(Principal("alice", frozenset({"user"}), "session"), 101)
    assert first.content == msgspec.json.encode(job_data(page, ""))  # the mapping's own encoding
    body = first.json()
    assert {m["Config"]["GUID"] for m in body["MetricData"]} >= {"cpu_cores"}
    assert body["QuantileData"] and body["QuantileData"][0]["Quantiles"] == ["0.25", "0.5", "0.75"]

    added = await fx_client.post("/api/tags/add_tag?job=101", json={"Name": "checked"}, headers=alice)
    assert added.status_code == 200, added.text
    tagged = (await fx_client.get("/api/job/101", headers=alice)).json()
    assert "checked" in [t["Name"] for t in tagged["Tags"]]
    assert "checked" in [t["Name"] for t in tagged["Metadata"]["Tags"]]
    assert tagged["MetricData"] == body["MetricData"] and tagged["QuantileData"] == body["QuantileData"]

    bob = _bearer(await login(fx_client, "bob", "bob-password"))
    fx_client.cookies.clear()
    denied = await fx_client.get("/api/job/101", headers=bob)
    assert denied.status_code == 404 and "MetricData" not in denied.text
