"""Seed 000's routes (issue 18): ingest (auth, bad records, idempotency, the join with a monitored job),
the dashboard's metadata, filter, charts and stats, reports, and who sees what."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.domain.jobs import JobFacts
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from litestar.testing import AsyncTestClient
from storehelp import db_of
from usage_chart_keys import CHART_KEYS


def record(job: str, user: str = "alice", **over: Any) -> dict[str, Any]:
    base = {
        "JobID": job,
        "User": user,
        "Account": "proj1",
        "Partition": "compute",
        "State": "COMPLETED",
        "QOS": "normal",
        "Submit": "2025-01-01 10:00:00",
        "Start": "2025-01-01T10:05:00",
        "End": "2025-01-01T11:05:00",
        "CPUHours": 4.0,
        "GPUHours": 0.0,
        "AllocCPUS": 4,
        "AllocGPUS": 0,
        "AllocNodes": 1,
        "NodeList": "node001",
    }
    base.update(over)
    return base


@pytest.fixture
def fx_ingest(fx_store: SqliteStore) -> dict[str, str]:
    key, _ = users.create_api_key(db_of(fx_store), "service:exporter", "ingest", "exporter")
    return {"X-API-Key": key}


@pytest.fixture
async def fx_admin(fx_client: AsyncTestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await login(fx_client, 'admin', ADMIN_PASSWORD)}"}


@pytest.fixture
async def fx_alice(fx_client: AsyncTestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await login(fx_client, 'alice', 'alice-password')}"}


def count(store: SqliteStore) -> int:
    return int(db_of(store).execute("SELECT count(*) FROM usage_jobs").fetchone()[0])


async def ingest(client: AsyncTestClient, headers: dict[str, str], jobs: list[Any], host: str = "c1") -> Any:
    return await client.post("/api/data/ingest", json={"hostname": host, "jobs": jobs}, headers=headers)


async def test_health_answers_without_a_key(fx_client: AsyncTestClient) -> None:
    response = await fx_client.get("/api/dashboard/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy" and body["data_loaded"] is False and body["hostnames"] == []


async def test_ingest_needs_a_key_of_the_ingest_role(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_alice: dict[str, str]
) -> None:
    fx_client.cookies.clear()  # the login fixture's cookie
    assert (await ingest(fx_client, {}, [record("1")])).status_code == 401
    assert (await ingest(fx_client, {"X-API-Key": "jp_nope_nope"}, [record("1")])).status_code == 401
    other, _ = users.create_api_key(db_of(fx_store), "service:hooks", "job-control", "prolog")
    response = await ingest(fx_client, {"X-API-Key": other}, [record("1")])
    assert response.status_code == 403 and "ingest" in response.json()["detail"]
    assert (await ingest(fx_client, fx_alice, [record("1")])).status_code == 403  # a user session
    assert count(fx_store) == 0


async def test_an_ingest_key_reads_nothing(fx_client: AsyncTestClient, fx_ingest: dict[str, str]) -> None:
    assert (await fx_client.get("/api/dashboard/metadata", headers=fx_ingest)).status_code == 403
    assert (await fx_client.get("/api/jobs", headers=fx_ingest)).status_code == 403


async def test_ingest_is_idempotent_per_cluster_and_job(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_ingest: dict[str, str], fx_admin: dict[str, str]
) -> None:
    jobs = [record("10"), record("11", "bob", CPUHours=2.5), record("12_3"), record("13+1")]
    response = await ingest(fx_client, fx_ingest, jobs)
    assert response.status_code == 200, response.text
    assert response.json()["new"] == 4 and "Ingested 4 jobs" in response.json()["message"]
    response = await ingest(fx_client, fx_ingest, jobs)  # the exporter re-sends the week
    assert response.json()["new"] == 0 and response.json()["unchanged"] == 4
    assert (await ingest(fx_client, fx_ingest, [record("10")], host="c2")).json()["new"] == 1  # other cluster
    changed = await ingest(fx_client, fx_ingest, [record("10", State="FAILED")])
    assert changed.json()["updated"] == 1
    assert count(fx_store) == 5
    stats = (await fx_client.get("/api/dashboard/stats/c1", headers=fx_admin)).json()
    assert stats["total_jobs"] == 4 and stats["total_cpu_hours"] == 14.5 and stats["total_users"] == 2


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"JobID": "abc"}, "jobs[1].JobID"),
        ({"Submit": "yesterday"}, "jobs[1].Submit"),
        ({"Submit": None}, "jobs[1].Submit"),
        ({"CPUHours": "4"}, "jobs[1].CPUHours"),
        ({"CPUHours": -1}, "jobs[1].CPUHours"),
        ({"AllocCPUS": 1.5}, "jobs[1].AllocCPUS"),
        ({"State": "DONE!"}, "jobs[1].State"),
        ({"User": 7}, "jobs[1].User"),
        ({"End": "2025-01-01T09:00:00"}, "jobs[1].End"),
    ],
)
async def test_a_bad_record_is_a_400_naming_it_and_nothing_is_stored(
    fx_client: AsyncTestClient,
    fx_store: SqliteStore,
    fx_ingest: dict[str, str],
    bad: dict[str, Any],
    field: str,
) -> None:
    response = await ingest(fx_client, fx_ingest, [record("1"), record("2", **bad)])
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["key"] == field
    assert field in response.json()["detail"]
    assert count(fx_store) == 0


@pytest.mark.parametrize(
    "body", [{"hostname": "c1"}, {"hostname": "", "jobs": []}, {"hostname": "c 1", "jobs": []}, {"jobs": []}]
)
async def test_a_bad_request_names_the_field(
    fx_client: AsyncTestClient, fx_ingest: dict[str, str], body: dict[str, Any]
) -> None:
    response = await fx_client.post("/api/data/ingest", json=body, headers=fx_ingest)
    assert response.status_code == 400
    assert response.json()["errors"][0]["key"] in ("hostname", "jobs")


async def test_the_state_text_of_sacct_is_normalized(
    fx_client: AsyncTestClient, fx_ingest: dict[str, str], fx_admin: dict[str, str]
) -> None:
    await ingest(
        fx_client, fx_ingest, [record("1", State="CANCELLED by 1001", Start="Unknown", End="Unknown")]
    )
    meta = (await fx_client.get("/api/dashboard/metadata", headers=fx_admin)).json()
    assert meta["states"] == {"c1": ["CANCELLED"]}


async def test_a_monitored_job_and_its_accounting_record_are_one_job(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_ingest: dict[str, str], fx_admin: dict[str, str]
) -> None:
    # job 77 seen by agents (2 h on 8 CPUs), job 78 by agents only
    for job in (77, 78):
        facts = JobFacts(user_name="alice", account="proj1", partition="compute", cpus=8, num_nodes=1)
        await fx_store.record_start("c1", job, 1_735_725_600, facts, "api")
        await fx_store.record_stop("c1", job, 1_735_732_800, "COMPLETED", 0, "api")
    stats = (await fx_client.get("/api/dashboard/stats/c1", headers=fx_admin)).json()
    assert stats["total_jobs"] == 2 and stats["total_cpu_hours"] == 32.0  # by allocation: 8 x 2 h each
    await ingest(fx_client, fx_ingest, [record("77", CPUHours=15.0, Submit="2025-01-01 09:00:00")])
    stats = (await fx_client.get("/api/dashboard/stats/c1", headers=fx_admin)).json()
    assert stats["total_jobs"] == 2 and stats["total_cpu_hours"] == 31.0  # accounting replaces, never adds
    rows = {
        r["job"]: (r["source"], r["run_id"])
        for r in db_of(fx_store).execute("SELECT job, source, run_id FROM usage_jobs")
    }
    run77 = db_of(fx_store).execute("SELECT run_id FROM jobs WHERE job_id = 77").fetchone()[0]
    assert rows["77"] == ("ingest", run77) and rows["78"][0] == "monitor"
    # the monitored run changing later (an admin refresh) does not bring the allocation figure back
    await fx_store.record_stop("c1", 77, 1_735_732_900, "COMPLETED", 0, "api")
    stats = (await fx_client.get("/api/dashboard/stats/c1", headers=fx_admin)).json()
    assert stats["total_jobs"] == 2 and stats["total_cpu_hours"] == 31.0
    assert stats["efficiency"]["monitored_jobs"] == 0  # no summaries yet
    await fx_store.save_summary(run77, 0.0, {"cpu_efficiency": 0.5, "gpu_util_mean_percent": None}, [])
    stats = (await fx_client.get("/api/dashboard/stats/c1", headers=fx_admin)).json()
    assert stats["efficiency"] == {"monitored_jobs": 1, "cpu_efficiency": 0.5, "gpu_util_mean_percent": None}


async def test_metadata_filter_and_charts(
    fx_client: AsyncTestClient, fx_ingest: dict[str, str], fx_admin: dict[str, str]
) -> None:
    jobs = [
        record("1"),
        record("2", "bob", Partition="gpu", GPUHours=2.0, AllocGPUS=2, State="FAILED"),
        record("3", Submit="2025-02-03 08:00:00", Start="2025-02-03T09:00:00", End="2025-02-03T12:00:00"),
    ]
    assert (await ingest(fx_client, fx_ingest, jobs)).status_code == 200
    meta = (await fx_client.get("/api/dashboard/metadata", headers=fx_admin)).json()
    assert meta["hostnames"] == ["c1"]
    assert meta["date_ranges"] == {"c1": {"min_date": "2025-01-01", "max_date": "2025-02-03"}}
    assert meta["partitions"]["c1"] == ["compute", "gpu"] and meta["users"]["c1"] == ["alice", "bob"]
    narrowed = await fx_client.get(
        "/api/dashboard/metadata",
        params={"hostname": "c1", "start_date": "2025-02-01", "end_date": "2025-02-28"},
        headers=fx_admin,
    )
    assert narrowed.json()["users"] == {"c1": ["alice"]}

    body = {"hostname": "c1", "start_date": "2025-01-01", "end_date": "2025-12-31", "partitions": ["gpu"]}
    filtered = (await fx_client.post("/api/dashboard/filter", json=body, headers=fx_admin)).json()
    assert filtered["total_jobs"] == 1 and filtered["total_gpu_hours"] == 2.0
    assert filtered["data"][0]["JobID"] == "2" and filtered["data"][0]["Submit"] == "2025-01-01T10:00:00"

    body = {"hostname": "c1", "start_date": "2025-01-01", "end_date": "2025-12-31", "period_type": "month",
            "account_segments": 3}  # fmt: skip
    charts = (await fx_client.post("/api/dashboard/charts", json=body, headers=fx_admin)).json()
    assert charts["summary"] == {
        "total_jobs": 3,
        "total_cpu_hours": 12.0,
        "total_gpu_hours": 2.0,
        "total_users": 2,
    }
    assert charts["cpu_usage_over_time"] == {"x": ["2025-01", "2025-02"], "y": [8.0, 4.0]}
    assert charts["jobs_by_state"] == {"labels": ["COMPLETED", "FAILED"], "values": [2, 1]}
    trends = charts["waiting_times_trends"]
    assert trends["x"] == ["2025-01", "2025-02"] and trends["stats"]["max"] == [0.083, 1.0]
    assert set(trends["stats"]) == {"mean", "median", "max", "p25", "p50", "p75", "p90", "p95", "p99"}
    # the page's axis is "Percentage of Jobs": the shares add up to 100, the counts to the jobs
    assert sum(charts["job_duration_hist"]["counts"]) == 3
    assert sum(charts["job_duration_hist"]["y"]) == pytest.approx(100, abs=0.05)
    bad = await fx_client.post(
        "/api/dashboard/charts", json={**body, "period_type": "fortnight"}, headers=fx_admin
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["key"] == "period_type"
    bad = await fx_client.post(
        "/api/dashboard/charts", json={**body, "start_date": "01/01/2025"}, headers=fx_admin
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["key"] == "start_date"
    missing = await fx_client.get("/api/dashboard/stats/nowhere", headers=fx_admin)
    assert missing.status_code == 404


async def test_users_see_only_their_own_jobs(
    fx_client: AsyncTestClient, fx_ingest: dict[str, str], fx_alice: dict[str, str]
) -> None:
    await ingest(fx_client, fx_ingest, [record("1"), record("2", "bob", CPUHours=100.0)])
    meta = (await fx_client.get("/api/dashboard/metadata", headers=fx_alice)).json()
    assert meta["users"] == {"c1": ["alice"]}
    stats = (await fx_client.get("/api/dashboard/stats/c1", headers=fx_alice)).json()
    assert stats["total_jobs"] == 1 and stats["total_cpu_hours"] == 4.0
    body = {"hostname": "c1", "users": ["bob"]}
    filtered = (await fx_client.post("/api/dashboard/filter", json=body, headers=fx_alice)).json()
    assert filtered["total_jobs"] == 1 and {r["User"] for r in filtered["data"]} == {"alice"}
    fx_client.cookies.clear()
    assert (await fx_client.get("/api/dashboard/metadata")).status_code == 401


async def test_reports(
    fx_client: AsyncTestClient, fx_ingest: dict[str, str], fx_admin: dict[str, str]
) -> None:
    await ingest(fx_client, fx_ingest, [record("1"), record("2", "bob", State="FAILED")])
    params = {"hostname": "c1", "type": "monthly", "year": "2025", "month": "1"}
    preview = (await fx_client.get("/api/reports/preview", params=params, headers=fx_admin)).json()
    assert preview["period"] == {"label": "2025-01", "start_date": "2025-01-01", "end_date": "2025-01-31"}
    assert preview["waiting_time_stats"]["mean"] == 0.083 and preview["summary"]["total_jobs"] == 2
    assert preview["summary"]["success_rate"] == 50.0 and preview["timeline"][0]["date"] == "2025-01-01"
    csv = await fx_client.get("/api/reports/generate", params={**params, "format": "csv"}, headers=fx_admin)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "by_user,bob,1,4.0,0.0,1" in csv.text
    pdf = await fx_client.get("/api/reports/generate", params={**params, "format": "pdf"}, headers=fx_admin)
    assert pdf.status_code == 501
    bad = await fx_client.get("/api/reports/preview", params={**params, "month": "13"}, headers=fx_admin)
    assert bad.status_code == 400 and bad.json()["errors"][0]["key"] == "month"


async def test_saml_me_and_login(fx_client: AsyncTestClient, fx_alice: dict[str, str]) -> None:
    fx_client.cookies.clear()
    assert (await fx_client.get("/saml/me")).status_code == 401
    me = (await fx_client.get("/saml/me", headers=fx_alice)).json()
    assert me["username"] == "alice" and me["is_admin"] is False
    page = await fx_client.get("/saml/login", params={"redirect_to": "https://evil.example/x"})
    assert page.status_code == 200 and 'value="/"' in page.text
    form = {"username": "alice", "password": "alice-password", "redirect_to": "/dashboard?x=1"}
    done = await fx_client.post("/saml/login", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/dashboard?x=1"
    assert "Authorization" in done.headers["set-cookie"]
    assert (await fx_client.get("/saml/me")).json()["username"] == "alice"  # the cookie
    evil = await fx_client.post(
        "/saml/login", data={**form, "redirect_to": "//evil.example/"}, follow_redirects=False
    )
    assert evil.headers["location"] == "/"
    wrong = await fx_client.post("/saml/login", data={**form, "password": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401


async def test_version_and_deploy_key(fx_client: AsyncTestClient) -> None:
    assert (await fx_client.get("/api/dashboard/version")).json()["server"] == "jobpulse"
    response = await fx_client.post("/api/agent/exchange-deploy-key", data={"deploy_key": "x"})
    assert response.status_code == 501 and "ingest" in response.json()["detail"]


def test_records_are_not_shared_between_tests() -> None:
    assert copy.deepcopy(record("1")) == record("1")


READ_ROUTES = [
    ("GET", "/api/dashboard/metadata", None),
    ("POST", "/api/dashboard/filter", {"hostname": "c1"}),
    ("POST", "/api/dashboard/charts", {"hostname": "c1"}),
    ("GET", "/api/dashboard/stats/c1", None),
    ("GET", "/api/reports/preview?hostname=c1&type=annual&year=2025", None),
    ("GET", "/api/reports/generate?hostname=c1&type=annual&year=2025&format=csv", None),
]


@pytest.mark.parametrize(("method", "path", "body"), READ_ROUTES)
async def test_every_read_route_needs_a_person(
    fx_client: AsyncTestClient,
    fx_store: SqliteStore,
    fx_ingest: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    fx_client.cookies.clear()
    assert (await fx_client.request(method, path, json=body)).status_code == 401
    wrong = {"X-API-Key": "jp_0000000000_notakey"}
    assert (await fx_client.request(method, path, json=body, headers=wrong)).status_code == 401
    assert (await fx_client.request(method, path, json=body, headers=fx_ingest)).status_code == 403
    hooks, _ = users.create_api_key(db_of(fx_store), "service:hooks", "job-control", "prolog")
    response = await fx_client.request(method, path, json=body, headers={"X-API-Key": hooks})
    assert response.status_code == 403
    alice, _ = users.create_api_key(db_of(fx_store), "alice", "user", "scripts")
    response = await fx_client.request(method, path, json=body, headers={"X-API-Key": alice})
    assert response.status_code in (200, 404), response.text  # 404: stats of a cluster with no records


# -- issue 18: every chart the dashboard reads (its types/index.ts AggregatedChartsResponse) ----------------
TWO_WEEKS = {"hostname": "c1", "start_date": "2025-01-06", "end_date": "2025-01-19", "period_type": "week"}


@pytest.fixture
async def fx_three_jobs(fx_client: AsyncTestClient, fx_store: SqliteStore, fx_ingest: dict[str, str]) -> None:
    """Two weeks (Mondays 2025-01-06 and -13): alice 4 CPUs on node001, bob 8 CPUs + 2 GPUs on
    gpu[01-02], alice 8 CPUs + 1 GPU on gpu01 (FAILED); gpu01's agent said it has 16 CPUs and 2 GPUs."""
    jobs = [
        record("1", Submit="2025-01-06 09:00:00", Start="2025-01-06T09:00:00", End="2025-01-06T10:00:00"),
        record("2", "bob", Partition="gpu", Submit="2025-01-08 09:00:00", Start="2025-01-08T09:00:00",
               End="2025-01-08T11:00:00", CPUHours=16.0, GPUHours=4.0, AllocCPUS=8, AllocGPUS=2, AllocNodes=2,
               NodeList="gpu[01-02]"),
        record("3", Partition="gpu", State="FAILED", Submit="2025-01-14 09:00:00", Start="2025-01-14T09:30:00",
               End="2025-01-14T10:30:00", CPUHours=8.0, GPUHours=1.0, AllocCPUS=8, AllocGPUS=1, NodeList="gpu01"),
    ]  # fmt: skip
    assert (await ingest(fx_client, fx_ingest, jobs)).status_code == 200
    gpus = [pb.GpuInfo(uuid=f"GPU-{i}", index=i) for i in range(2)]
    await fx_store.hello(pb.Hello(node="gpu01", cluster="c1", stream_id="s", cpus=16, gpus=gpus))


async def charts_of(client: AsyncTestClient, headers: dict[str, str], **over: Any) -> Any:
    response = await client.post("/api/dashboard/charts", json={**TWO_WEEKS, **over}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.usefixtures("fx_three_jobs")
async def test_charts_fill_every_chart_the_dashboard_reads(
    fx_client: AsyncTestClient, fx_admin: dict[str, str]
) -> None:
    charts = await charts_of(fx_client, fx_admin)
    assert set(charts) == CHART_KEYS
    for key in CHART_KEYS - {"summary", "jobs_by_state"}:
        assert charts[key]["x"], f"{key} is empty"
    # sizes as the page's "Allocated Resources" histograms; GPUs per job counts GPU jobs only
    assert charts["cpus_per_job"] == {"x": [4, 8], "y": [1, 2], "type": "histogram"}
    assert charts["gpus_per_job"] == {"x": [1, 2], "y": [1, 1], "type": "histogram"}
    assert charts["nodes_per_job"] == {"x": [1, 2], "y": [2, 1], "type": "histogram"}
    # per node: bob's 16 CPU-hours and 4 GPU-hours shared by gpu01 and gpu02; alice's 8 + 1 on gpu01
    cpu, gpu = charts["node_cpu_usage"], charts["node_gpu_usage"]
    assert (cpu["x"], cpu["y"]) == (["gpu01", "gpu02", "node001"], [16.0, 8.0, 4.0])
    assert (gpu["x"], gpu["y"]) == (["gpu01", "gpu02"], [3.0, 2.0])  # node001 gave no GPU-hours
    assert cpu["hardware_config"] == {"gpu01": {"cpu_cores": 16, "gpu_count": 2}}
    assert cpu["total_hours"] == 14 * 24 and cpu["normalized"] is False
    # users by active weeks: alice in both, bob in one
    activity = charts["user_activity_frequency"]
    assert (activity["x"], activity["y"]) == ([1, 2], [1, 1])
    assert (activity["total_users"], activity["total_periods"], activity["period_label"]) == (2, 2, "weeks")
    # the page draws waiting times as a share of jobs, and per week as stacked percentages
    assert sum(charts["waiting_times_hist"]["y"]) == pytest.approx(100, abs=0.05)
    stacked = charts["waiting_times_stacked"]
    assert stacked["x"] == ["2025-W01", "2025-W02"]
    assert [sum(s["data"][i] for s in stacked["series"]) for i in range(2)] == pytest.approx(
        [100, 100], abs=0.05
    )
    first_bin = next(s for s in stacked["series"] if s["name"] == "<1m")
    assert first_bin["data"] == [100.0, 0.0]  # week 1's jobs started at once; week 2's waited 30 min
    # jobs per week as the page's "Jobs per Period" histogram: one week of 2 jobs, one of 1
    assert sum(charts["jobs_distribution"]["y"]) == 2 and charts["jobs_distribution"]["mean"] == 1.5


@pytest.mark.usefixtures("fx_three_jobs")
async def test_a_job_that_never_got_nodes_counts_on_no_node(
    fx_client: AsyncTestClient, fx_admin: dict[str, str], fx_ingest: dict[str, str]
) -> None:
    """sacct prints "None assigned" as the node list of a job cancelled while pending (seen with the real
    exporter on the test cluster): the job counts, but no node of that name appears in the node charts."""
    pending = record("4", State="CANCELLED by 0", Submit="2025-01-09 09:00:00", Start="Unknown",
                     End="2025-01-09T09:05:00", CPUHours=0.0, NodeList="None assigned")  # fmt: skip
    assert (await ingest(fx_client, fx_ingest, [pending])).status_code == 200
    charts = await charts_of(fx_client, fx_admin)
    assert charts["node_cpu_usage"]["x"] == ["gpu01", "gpu02", "node001"]
    assert sum(charts["jobs_over_time"]["y"]) == 4


async def test_a_bracketed_node_list_counts_its_nodes(
    fx_client: AsyncTestClient, fx_admin: dict[str, str], fx_ingest: dict[str, str]
) -> None:
    """The real exporter counts AllocNodes by splitting NodeList on commas: a 3-node job on "n[1-3]"
    arrives as AllocNodes 1 (seen on the test cluster). The expanded list says 3."""
    job = record("5", AllocNodes=1, NodeList="n[1-3]", AllocCPUS=3, Submit="2025-01-07 09:00:00",
                 Start="2025-01-07T09:00:00", End="2025-01-07T10:00:00")  # fmt: skip
    assert (await ingest(fx_client, fx_ingest, [job])).status_code == 200
    charts = await charts_of(fx_client, fx_admin)
    assert charts["nodes_per_job"]["x"] == [3] and charts["nodes_per_job"]["y"] == [1]


@pytest.mark.usefixtures("fx_three_jobs")
async def test_normalized_node_usage_is_a_share_of_known_capacity(
    fx_client: AsyncTestClient, fx_admin: dict[str, str]
) -> None:
    charts = await charts_of(fx_client, fx_admin, normalize_node_usage=True)
    cpu, gpu = charts["node_cpu_usage"], charts["node_gpu_usage"]
    # gpu01: 16 CPU-hours of 16 CPUs x 336 h; 3 GPU-hours of 2 GPUs x 336 h. The others' sizes are unknown.
    assert (
        cpu["normalized"] is True and cpu["x"] == ["gpu01"] and cpu["y"] == [round(100 * 16 / (16 * 336), 2)]
    )
    assert cpu["not_normalized"] == ["gpu02", "node001"]
    assert gpu["x"] == ["gpu01"] and gpu["y"] == [round(100 * 3 / (2 * 336), 2)]


@pytest.mark.usefixtures("fx_three_jobs")
async def test_color_by_breaks_the_charts_down_by_that_dimension(
    fx_client: AsyncTestClient, fx_admin: dict[str, str]
) -> None:
    charts = await charts_of(fx_client, fx_admin, color_by="Partition")
    series = {s["name"]: s["data"] for s in charts["cpu_usage_over_time"]["series"]}
    assert series == {"compute": [4.0, 0.0], "gpu": [16.0, 8.0]}
    jobs = {s["name"]: s["data"] for s in charts["jobs_over_time"]["series"]}
    assert jobs == {"compute": [1, 0], "gpu": [1, 1]}
    pie = charts["cpu_hours_by_account"]
    assert pie["type"] == "pie" and dict(zip(pie["labels"], pie["values"], strict=True)) == {
        "gpu": 24.0,
        "compute": 4.0,
    }
    waiting = charts["waiting_times_hist"]
    assert waiting["type"] == "pie" and dict(zip(waiting["labels"], waiting["values"], strict=True)) == {
        "gpu": 0.5, "compute": 0.0,
    }  # fmt: skip
    by_user = await charts_of(fx_client, fx_admin, color_by="User")
    activity = by_user["user_activity_frequency"]
    assert activity["type"] == "pie" and dict(zip(activity["labels"], activity["values"], strict=True)) == {
        "alice": 2, "bob": 1,
    }  # fmt: skip
    bad = await fx_client.post(
        "/api/dashboard/charts", json={**TWO_WEEKS, "color_by": "Colour"}, headers=fx_admin
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["key"] == "color_by"


@pytest.mark.usefixtures("fx_three_jobs")
async def test_complete_periods_only_drops_the_partial_first_and_last_week(
    fx_client: AsyncTestClient, fx_admin: dict[str, str]
) -> None:
    # Wednesday 8th to Saturday 18th: the first week (from Monday 6th) and the last (to Sunday 19th) are partial
    window = {"start_date": "2025-01-08", "end_date": "2025-01-18"}
    partial = await charts_of(fx_client, fx_admin, **window)
    assert partial["jobs_over_time"]["x"] == ["2025-W01", "2025-W02"]
    whole = await charts_of(fx_client, fx_admin, **window, complete_periods_only=True)
    assert whole["jobs_over_time"] == {"x": [], "y": []} and whole["summary"]["total_jobs"] == 0
    # Monday 6th to Saturday 18th: the first week is whole, the second is not
    first = await charts_of(fx_client, fx_admin, start_date="2025-01-06", end_date="2025-01-18",
                            complete_periods_only=True)  # fmt: skip
    assert first["jobs_over_time"] == {"x": ["2025-W01"], "y": [2]} and first["summary"]["total_jobs"] == 2
    assert first["node_cpu_usage"]["total_hours"] == 7 * 24


@pytest.mark.usefixtures("fx_three_jobs")
async def test_filtered_and_own_charts_count_only_those_jobs(
    fx_client: AsyncTestClient, fx_admin: dict[str, str], fx_alice: dict[str, str]
) -> None:
    gpu = await charts_of(fx_client, fx_admin, partitions=["gpu"])
    assert gpu["summary"]["total_jobs"] == 2 and gpu["summary"]["total_users"] == 2
    assert gpu["cpus_per_job"]["x"] == [8] and gpu["node_cpu_usage"]["x"] == ["gpu01", "gpu02"]
    assert gpu["active_users_over_time"]["y"] == [1, 1]
    own = await charts_of(fx_client, fx_alice)  # alice's own jobs only
    assert own["summary"]["total_users"] == 1 and own["summary"]["total_jobs"] == 2
    assert own["node_cpu_usage"]["x"] == ["gpu01", "node001"] and own["node_cpu_usage"]["y"] == [8.0, 4.0]
    assert own["user_activity_frequency"]["x"] == [1, 2] and own["user_activity_frequency"]["y"] == [0, 1]
    both = await charts_of(
        fx_client, fx_alice, partitions=["gpu"]
    )  # two filters: the daily rollup and the rows
    assert both["summary"]["total_jobs"] == 1 and both["gpus_per_job"] == {
        "x": [1],
        "y": [1],
        "type": "histogram",
    }
