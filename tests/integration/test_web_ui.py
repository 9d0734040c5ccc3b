"""The web interface in a real headless browser (Debian's chromium driven by Playwright) against a real
collector fed over gRPC as agents feed it: sign in, the job list, a wide job's page, ownership, offline."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from localpage import CHROMIUM, local_page
from support import start_collector, stop, unique_job_id, wait_for
from test_jobmon_pages import GIB, PASSWORD, STEPS, NodeStream, T, _add_user, _cookie

pytestmark = pytest.mark.browser

if not shutil.which(CHROMIUM) and not os.environ.get("JOBPULSE_REQUIRE_BROWSER"):
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """alice: a finished 10-node job (node i uses i/2 of 8 cores) and a running one; bob: one job."""
    state = tmp_path_factory.mktemp("web-ui")
    collector = start_collector(
        state / "collector",
        env={  # findings for a job of a minute too (by default: 5 minutes or more)
            "JOBPULSE_SUMMARY_INTERVAL": "0.5",
            "JOBPULSE_SUMMARY_DELAY": "3",
            "JOBPULSE_FINDING_MIN_DURATION": "0",
        },
    )
    for user in ("alice", "bob"):
        _add_user(collector, user)
    names = [f"w{i:02d}" for i in range(10)]
    streams = {n: NodeStream(collector.grpc_target, n) for n in names}
    wide, running, bobs = (unique_job_id() for _ in range(3))
    try:
        for i, stream in enumerate(streams.values()):
            stream.start(wide, "alice", T - 5)
            rows = [
                (
                    T + 10 * k,
                    {
                        "cpu_cores": i / 2,
                        "cpu_user_seconds": i / 2 * 10 * k,  # the counter behind cpu_cores
                        "cpu_system_seconds": 0.0,
                        "alloc_cpus": 8.0,
                        "mem_current_bytes": GIB,
                        "mem_peak_bytes": GIB,
                        "mem_limit_bytes": 4 * GIB,
                    },
                )
                for k in range(STEPS)
            ]
            stream.samples(wide, rows)
            stream.stop(wide, T + 10 * STEPS - 5)
        streams["w00"].start(running, "alice", T)
        streams["w00"].samples(running, [(T + 10 * k, {"cpu_cores": 1.0}) for k in range(STEPS)])
        streams["w01"].start(bobs, "bob", T)
        streams["w01"].samples(bobs, [(T, {"cpu_cores": 1.0})])
        streams["w01"].stop(bobs, T + 30)
        wait_for(
            lambda: collector.get(f"/api/job/{wide}").json().get("Summary"), 30, "the wide job's summary"
        )
        yield {"collector": collector, "wide": wide, "running": running, "bobs": bobs, "streams": streams}
    finally:
        for stream in streams.values():
            stream.close()
        stop(collector.proc)


@pytest.fixture
def browser_page(site: dict[str, Any]) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A fresh browser page that may reach only the collector (localpage.py)."""
    with local_page() as opened:
        yield opened


def _sign_in(page: Any, url: str, user: str, password: str = PASSWORD) -> None:
    page.goto(url + "/")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_sign_in_list_and_a_wide_jobs_page(site: dict[str, Any], browser_page: Any) -> None:
    page, errors, outside = browser_page
    collector, wide, running = site["collector"], site["wide"], site["running"]
    _sign_in(page, collector.url, "alice", "wrong")
    page.wait_for_selector("text=Wrong user or password.")
    _sign_in(page, collector.url, "alice")
    page.wait_for_selector("tr.job")
    assert page.url.endswith("/ui/#/jobs") or "/ui/" in page.url
    ids = page.eval_on_selector_all("tr.job", "rows => rows.map(r => r.dataset.id)")
    assert sorted(ids) == sorted([str(wide), str(running)])  # not bob's job
    row = page.locator(f'tr.job[data-id="{wide}"]')
    assert "COMPLETED" in row.inner_text() and row.locator(".bar").count() == 2  # CPU and memory footprints
    assert "running" in page.locator(f'tr.job[data-id="{running}"]').inner_text()
    assert "alice" in page.inner_text("#who")

    row.click()
    page.wait_for_selector(".uplot")
    head = page.inner_text(".card")
    assert f"Job {wide}" in head and "10 (" in head
    cores = page.locator(".chart", has_text="CPU cores used")
    assert cores.count() == 1
    legend = cores.inner_text()
    assert "median" in legend and "w09" not in legend  # a band over 10 nodes, not 10 lines
    findings = collector.get(f"/api/job/{wide}").json()["Findings"]
    assert "low_cpu_efficiency" in [f["rule"] for f in findings]  # 2.25 of 8 cores per node
    for finding in findings:
        assert finding["hint"] in page.inner_text("#notes")
    assert errors == [] and outside == []


def test_a_job_of_someone_else_is_not_shown(site: dict[str, Any], browser_page: Any) -> None:
    page, errors, _ = browser_page
    collector = site["collector"]
    _sign_in(page, collector.url, "alice")
    page.wait_for_selector("tr.job")
    page.goto(f"{collector.url}/ui/#/job/{site['bobs']}")
    page.wait_for_selector(".error")
    assert "not found" in page.inner_text(".error").lower()
    assert page.locator(".uplot").count() == 0 and errors == []


def test_root_sends_a_browser_to_the_interface(site: dict[str, Any]) -> None:
    collector = site["collector"]
    response = httpx.get(collector.url + "/", follow_redirects=False, timeout=10)
    assert response.status_code in (301, 302, 307) and response.headers["location"] == "/ui/"
    page = httpx.get(collector.url + "/ui/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "//" not in "".join(
        part.split('"')[1] for part in page.text.split("src=")[1:] + page.text.split("href=")[1:]
    )  # every asset from the collector itself


def test_the_pages_columns_are_the_apis_series(site: dict[str, Any]) -> None:
    """GET /ui/api/job/{id} (what the page draws) holds the same values as JobMon's GET /api/job/{id}, in
    columns, and the same rule on who may see the job."""
    collector, wide = site["collector"], site["wide"]
    cookie = {"Cookie": _cookie(collector, "alice")}
    page = httpx.get(f"{collector.url}/ui/api/job/{wide}", headers=cookie, timeout=30).json()
    jobmon = httpx.get(f"{collector.url}/api/job/{wide}", headers=cookie, timeout=30).json()
    cores = next(s for s in page["Series"] if s["GUID"] == "cpu_cores")
    theirs = next(m for m in jobmon["MetricData"] if m["Config"]["GUID"] == "cpu_cores")
    assert sorted(cores["nodes"]) == sorted(theirs["Data"]) and len(cores["nodes"]) == 10
    for node, points in theirs["Data"].items():
        assert [v for v in cores["nodes"][node] if v is not None] == pytest.approx(
            [p["_value"] for p in points]
        )
    assert len(cores["times"]) == len(theirs["Data"]["w00"]) and cores["times"] == sorted(cores["times"])
    assert page["Metadata"]["Id"] == wide and page["Findings"] == jobmon["Findings"]
    bobs = httpx.get(f"{collector.url}/ui/api/job/{site['bobs']}", headers=cookie, timeout=30)
    assert bobs.status_code == 404
    assert httpx.get(f"{collector.url}/ui/api/job/{wide}", timeout=30).status_code == 401
    assert httpx.get(f"{collector.url}/ui/api/job/12a", headers=cookie, timeout=30).status_code == 400


def test_admin_pages_keys_role_requests_and_audit(site: dict[str, Any], browser_page: Any) -> None:
    page, errors, outside = browser_page
    collector = site["collector"]
    asked = httpx.post(
        collector.url + "/api/notify/admin", json={"username": "bob", "roles": ["job-control"]}, timeout=10
    )
    assert asked.status_code == 200, asked.text
    _sign_in(page, collector.url, "admin", collector.admin_password)
    page.wait_for_selector("tr.job")
    page.click("#nav >> text=Admin")
    page.wait_for_selector("#nodes tbody tr")  # the first tab: the nodes, all ten reporting
    states = page.eval_on_selector_all(
        "#nodes tr[data-node]", "rows => rows.map(r => [r.dataset.node, r.cells[1].innerText])"
    )
    assert sorted(states) == [[f"w{i:02d}", "up"] for i in range(10)]
    page.click("nav.tabs >> text=API keys")
    page.wait_for_selector("#newkey")
    page.select_option("#newkey select[name=role]", "user")
    page.fill("#newkey input[name=owner]", "alice")
    page.fill("#newkey input[name=name]", "alice-laptop")
    page.click("#newkey button[type=submit]")
    secret = page.wait_for_selector("#secret").inner_text()
    assert secret.startswith("jp_")
    me = httpx.get(collector.url + "/api/auth/me", headers={"X-API-Key": secret}, timeout=10).json()
    assert me == {"Username": "alice", "Roles": ["user"], "Via": "api-key"}  # the key works, as alice
    row = page.locator("tr[data-key]", has_text="alice-laptop")  # listed at once
    row.wait_for()
    page.on("dialog", lambda d: d.accept())
    row.locator("button.revoke").click()
    page.locator("tr[data-key]", has_text="alice-laptop").filter(has_text="revoked").wait_for()
    assert (
        httpx.get(collector.url + "/api/auth/me", headers={"X-API-Key": secret}, timeout=10).status_code
        == 401
    )

    page.click("nav.tabs >> text=Role requests")
    request = page.locator("tr[data-req]", has_text="bob")
    request.wait_for()
    request.locator("button.grant").click()
    page.locator("tr[data-req]", has_text="handled").wait_for()
    admin = {"Authorization": f"Bearer {collector.login()}"}
    bob = httpx.get(collector.url + "/api/config/users/bob", headers=admin, timeout=10).json()
    assert sorted(bob["Roles"]) == ["job-control", "user"]

    page.click("nav.tabs >> text=Audit log")
    page.wait_for_selector("#audit tbody tr")
    audit = page.inner_text("#audit")
    for action in ("create_api_key", "revoke_api_key", "set_roles"):  # what the admin just did, by admin
        assert any(line.split("\t")[1:3] == ["admin", action] for line in audit.splitlines()), audit
    assert errors == [] and outside == []


def test_no_admin_pages_for_a_user(site: dict[str, Any], browser_page: Any) -> None:
    page, errors, _ = browser_page
    collector = site["collector"]
    _sign_in(page, collector.url, "alice")
    page.wait_for_selector("tr.job")
    assert "Admin" not in page.inner_text("#nav")
    page.goto(f"{collector.url}/ui/#/admin")
    page.wait_for_selector("text=Administration is for admins only.")
    cookie = {"Cookie": _cookie(collector, "alice")}
    assert httpx.get(f"{collector.url}/ui/api/nodes", headers=cookie, timeout=10).status_code == 403
    assert errors == []


def test_a_running_jobs_page_takes_new_samples_live(site: dict[str, Any], browser_page: Any) -> None:
    page, errors, outside = browser_page
    collector, running, stream = site["collector"], site["running"], site["streams"]["w00"]
    _sign_in(page, collector.url, "alice")
    page.wait_for_selector("tr.job")
    page.goto(f"{collector.url}/ui/#/job/{running}")
    page.wait_for_selector("#live:text-is(' · live')")
    stream.samples(running, [(T + 10 * STEPS, {"cpu_cores": 3.0})])  # the agent's next tick
    page.wait_for_selector("#live:has-text('live: 1 new sample')")
    stream.samples(running, [(T + 10 * STEPS + 10, {"cpu_cores": 2.0})])
    page.wait_for_selector("#live:has-text('live: 2 new samples')")
    assert errors == [] and outside == []


def test_tags_added_on_the_job_page_filter_the_list(site: dict[str, Any], browser_page: Any) -> None:
    page, errors, _ = browser_page
    collector, wide = site["collector"], site["wide"]
    _sign_in(page, collector.url, "alice")
    page.wait_for_selector("tr.job")
    page.goto(f"{collector.url}/ui/#/job/{wide}")
    page.wait_for_selector("#addtag")
    page.fill("#addtag input[name=tag]", "campaign-7")
    page.click("#addtag button[type=submit]")
    page.wait_for_selector("#tags .badge:has-text('campaign-7')")
    page.goto(f"{collector.url}/ui/#/jobs?TagNames=campaign-7")
    page.wait_for_selector("tr.job")
    assert page.eval_on_selector_all("tr.job", "rows => rows.map(r => r.dataset.id)") == [str(wide)]
    page.goto(f"{collector.url}/ui/#/job/{wide}")
    page.wait_for_selector("#tags .badge:has-text('campaign-7')")
    page.click("#tags .badge:has-text('campaign-7') a.untag")
    page.wait_for_selector("#tags .badge:has-text('campaign-7')", state="detached")
    cookie = {"Cookie": _cookie(collector, "alice")}
    tags = httpx.get(f"{collector.url}/api/job/{wide}", headers=cookie, timeout=30).json()["Metadata"]["Tags"]
    assert "campaign-7" not in [t["Name"] for t in tags]
    assert errors == []
