"""The web interface's usage view (issue 19) in a real headless browser (Debian's chromium driven by
Playwright) against a real collector: usage sent by an accounting exporter (``POST /api/data/ingest``
with an ingest key an admin made) and a job agents monitored (fed over gRPC as agents feed it). The
chart's figures are the route's, a user sees only their own, a row leads to the jobs list. Each test
saves a screenshot of what it saw (in ``$JOBPULSE_SCREENSHOTS`` when set, else the test's temporary
directory)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jobpulse.proto.v1 import ingest_pb2 as pb
from localpage import CHROMIUM, local_page
from support import start_collector, stop, unique_job_id, wait_for
from test_jobmon_pages import GIB, PASSWORD, STEPS, NodeStream, T, _add_user, _cookie
from test_web_ui import _sign_in

pytestmark = pytest.mark.browser

if not shutil.which(CHROMIUM) and not os.environ.get("JOBPULSE_REQUIRE_BROWSER"):
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)

TODAY = datetime.now(UTC).date()


def _sacct(
    job: str, user: str, account: str, days_ago: int, cpu_hours: float, gpu_hours: float = 0.0
) -> dict[str, Any]:
    """One exporter record: submitted ``days_ago`` days before today (UTC), started 20 minutes later."""
    submit = datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time()) + timedelta(hours=9)
    return {
        "JobID": job,
        "User": user,
        "Account": account,
        "Partition": "gpu" if gpu_hours else "compute",
        "State": "COMPLETED",
        "QOS": "normal",
        "Submit": submit.isoformat(sep=" "),
        "Start": (submit + timedelta(minutes=20)).isoformat(),
        "End": (submit + timedelta(hours=3)).isoformat(),
        "CPUHours": cpu_hours,
        "GPUHours": gpu_hours,
        "AllocCPUS": 8,
        "AllocGPUS": 2 if gpu_hours else 0,
        "AllocNodes": 1,
        "NodeList": "n001",
    }


# within the last four weeks, in three different weeks; carol's job is older (only in the 3-month view)
RECORDS = [
    _sacct("9001", "alice", "physics", 2, 24.0),
    _sacct("9002", "alice", "physics", 9, 40.0),
    _sacct("9003", "bob", "chemistry", 9, 64.0, gpu_hours=16.0),
    _sacct("9004", "bob", "physics", 16, 12.0),
    _sacct("9005", "carol", "chemistry", 60, 500.0),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """alice, bob, carol with accounting records; alice also with a job agents monitored (its summary: CPU
    and memory efficiency)."""
    state = tmp_path_factory.mktemp("web-usage")
    collector = start_collector(
        state / "collector", env={"JOBPULSE_SUMMARY_INTERVAL": "0.5", "JOBPULSE_SUMMARY_DELAY": "1"}
    )
    for user in ("alice", "bob", "carol"):
        _add_user(collector, user)
    admin = {"Authorization": f"Bearer {collector.login()}", "Accept": "application/json"}
    made = httpx.post(
        collector.url + "/api/generateAPIKey",
        json={"role": "ingest", "service": "exporter", "name": "sacct exporter"},
        headers=admin,
        timeout=10,
    )
    assert made.status_code == 200, made.text
    sent = httpx.post(
        collector.url + "/api/data/ingest",
        json={"hostname": "alpha", "jobs": RECORDS},
        headers={"X-API-Key": made.json()["key"]},
        timeout=30,
    )
    assert sent.status_code == 200 and sent.json()["new"] == len(RECORDS), sent.text
    stream = NodeStream(collector.grpc_target, "u01")
    monitored = unique_job_id()
    try:
        meta = pb.JobMeta(
            job_id=str(monitored), user="alice", uid=1000, nodelist="u01", start_time=T - 5,
            account="physics", partition="compute", num_nodes=1, cpus_on_node=4,
        )  # fmt: skip
        stream.send(pb.Batch(events=[pb.JobEvent(kind=pb.JobEvent.START, time_ms=(T - 5) * 1000, meta=meta)]))
        rows = [
            (
                T + 10 * k,
                {
                    "cpu_cores": 1.0,  # 1 of 4 cores: 25 %
                    "cpu_user_seconds": 10.0 * k,
                    "cpu_system_seconds": 0.0,
                    "alloc_cpus": 4.0,
                    "mem_current_bytes": GIB,
                    "mem_peak_bytes": GIB,  # 1 of 2 GiB: 50 %
                    "mem_limit_bytes": 2 * GIB,
                },
            )
            for k in range(STEPS)
        ]
        stream.samples(monitored, rows)
        stream.stop(monitored, T + 10 * STEPS - 5)
        wait_for(
            lambda: collector.get(f"/api/job/{monitored}").json().get("Summary"),
            30,
            "the monitored job's summary",
        )
        shots = Path(os.environ.get("JOBPULSE_SCREENSHOTS") or state / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        yield {"collector": collector, "monitored": monitored, "shots": shots}
    finally:
        stream.close()
        stop(collector.proc)


@pytest.fixture
def browser_page(site: dict[str, Any]) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A fresh browser page that may reach only the collector (localpage.py)."""
    with local_page() as opened:
        yield opened


def _route(collector: Any, user: str, **params: str) -> dict[str, Any]:
    """What GET /ui/api/usage answers ``user`` with the session cookie the page has."""
    password = collector.admin_password if user == "admin" else PASSWORD
    cookie = {"Cookie": _cookie(collector, user, password)}
    response = httpx.get(collector.url + "/ui/api/usage", params=params, headers=cookie, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _legend_at(page: Any, figure: str, body: dict[str, Any], index: int) -> dict[str, str]:
    """Move the mouse over period ``index`` of a usage chart, as a person does; the legend then reads."""
    from playwright.sync_api import expect

    chart = page.locator(f'.chart[data-figure="{figure}"]')
    box = chart.locator(".u-over").bounding_box()
    n = len(body["periods"])
    x = box["x"] + box["width"] * (index + 0.5) / n  # the x range is [-0.5, n - 0.5]
    page.mouse.move(x, box["y"] + box["height"] * 0.95)
    labels = chart.locator(".u-legend .u-series")
    expect(labels.first.locator(".u-value")).to_have_text(f"week of {body['periods'][index]}")
    found = {}
    for i in range(labels.count()):
        label = labels.nth(i).locator(".u-label").inner_text()
        found[label] = labels.nth(i).locator(".u-value").inner_text()
    return found


def _hours(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def test_the_chart_and_table_show_the_routes_figures(site: dict[str, Any], browser_page: Any) -> None:
    page, errors, outside = browser_page
    collector = site["collector"]
    _sign_in(page, collector.url, "admin", collector.admin_password)
    page.wait_for_selector("tr.job")
    page.click("#nav >> text=Usage")
    page.wait_for_selector('.chart[data-figure="cpu_hours"] .uplot')
    body = _route(collector, "admin", since=(TODAY - timedelta(days=27)).isoformat(), until=TODAY.isoformat())
    assert body["group"] == "week" and len(body["periods"]) in (4, 5)
    assert {s["key"] for s in body["series"]} == {"alice", "bob"}  # carol's job is older than 4 weeks
    n = len(body["periods"])
    for index in range(n):
        legend = _legend_at(page, "cpu_hours", body, index)
        for line in body["series"]:
            assert legend[line["key"]] == _hours(line["cpu_hours"][index]), (index, legend)
    busiest = max(range(n), key=lambda i: sum(s["cpu_hours"][i] for s in body["series"]))
    assert _legend_at(page, "cpu_hours", body, busiest) == {
        "Week": f"week of {body['periods'][busiest]}", "bob": "64.0", "alice": "40.0"
    }  # fmt: skip
    gpu = _legend_at(page, "gpu_hours", body, busiest)  # bob's GPU job: a GPU chart too
    assert gpu["bob"] == "16.0" and gpu["alice"] == "0.0"

    table = page.eval_on_selector_all(
        "#usage-table tr.usage-row", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    assert [r[0] for r in table] == [r["key"] for r in body["rows"]] == ["bob", "alice"]
    for shown, row in zip(table, body["rows"], strict=True):
        assert shown[1:4] == [str(row["jobs"]), _hours(row["cpu_hours"]), _hours(row["gpu_hours"])]
    alice = next(r for r in body["rows"] if r["key"] == "alice")
    summary = collector.get(f"/api/job/{site['monitored']}").json()["Summary"]  # what its job page says
    assert alice["monitored_jobs"] == 1
    assert alice["cpu_efficiency"] == pytest.approx(summary["cpu_efficiency"], abs=1e-3)
    assert alice["mem_efficiency"] == pytest.approx(0.5)  # 1 of 2 GiB
    assert table[1][5:] == ["1", f"{round(alice['cpu_efficiency'] * 100)} %", "50 %"]
    assert "Everyone's usage" in page.inner_text("#usage-summary")
    page.screenshot(path=str(site["shots"] / "usage-admin-4-weeks.png"), full_page=True)

    page.select_option("#usage-form select[name=range]", "3m")  # carol's older job comes in, per week
    page.select_option("#usage-form select[name=by]", "account")
    page.click("#usage-form button[type=submit]")
    page.wait_for_selector("#usage-table th:has-text('Account')")
    accounts = page.eval_on_selector_all("#usage-table tr.usage-row", "rows => rows.map(r => r.dataset.key)")
    assert accounts == ["chemistry", "physics"]  # 564 and 76 CPU-hours (alice's monitored job: none)
    page.screenshot(path=str(site["shots"] / "usage-admin-3-months-by-account.png"), full_page=True)
    page.click('#usage-table tr.usage-row[data-key="physics"]')
    page.wait_for_url(lambda url: url.endswith("#/jobs?Account=physics"))
    page.wait_for_selector("#jobs tr.job")
    assert page.eval_on_selector_all("tr.job", "rows => rows.map(r => r.dataset.id)") == [
        str(site["monitored"])
    ]
    assert page.input_value("#filters input[name=Account]") == "physics"
    assert errors == [] and outside == []


def test_a_user_sees_only_their_own_usage(site: dict[str, Any], browser_page: Any) -> None:
    page, errors, outside = browser_page
    collector = site["collector"]
    _sign_in(page, collector.url, "alice", PASSWORD)
    page.wait_for_selector("tr.job")
    page.goto(f"{collector.url}/ui/#/usage?range=3m&by=user")
    page.wait_for_selector('.chart[data-figure="cpu_hours"] .uplot')
    body = _route(collector, "alice", since=(TODAY - timedelta(days=90)).isoformat(), until=TODAY.isoformat())
    assert [s["key"] for s in body["series"]] == ["alice"] and body["only_user"] == "alice"
    rows = page.eval_on_selector_all("#usage-table tr.usage-row", "rows => rows.map(r => r.dataset.key)")
    assert rows == ["alice"]
    text = page.inner_text("main")
    assert "bob" not in text and "carol" not in text and "Your own usage (alice)" in text
    assert page.locator("#usage-form select[name=user]").count() == 0  # nobody else to pick
    assert page.locator('.chart[data-figure="gpu_hours"]').count() == 0  # alice used no GPU
    n = len(body["periods"])
    for index in range(n):
        assert _legend_at(page, "cpu_hours", body, index)["alice"] == _hours(
            body["series"][0]["cpu_hours"][index]
        )
    # asking for bob in the address changes nothing: the collector answers alice's own usage
    page.goto(f"{collector.url}/ui/#/usage?range=3m&by=account&user=bob")
    page.wait_for_selector("#usage-table th:has-text('Account')")
    assert page.eval_on_selector_all("#usage-table tr.usage-row", "rows => rows.map(r => r.dataset.key)") == [
        "physics"
    ]
    assert "bob" not in page.inner_text("#usage-table") and "chemistry" not in page.inner_text("main")
    page.screenshot(path=str(site["shots"] / "usage-alice-3-months.png"), full_page=True)
    page.goto(f"{collector.url}/ui/#/usage?range=custom&since=2025-03-01&until=2025-02-01")
    assert "until: is before since" in page.wait_for_selector("#usage-error").inner_text()
    assert errors == [] and outside == []
