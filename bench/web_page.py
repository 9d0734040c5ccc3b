"""Web interface benchmark: how long a 64-node, 24-hour job's page takes to be drawn in a real browser.

Usage: scripts/dev.sh run python bench/web_page.py [--runs 7] [--first-views 3] [--nodes 64] [--hours 24]
                                                   [--no-rollup]

Goal (issue 19): the page is interactive within 1 s. Measured with the browser's own clock: from the start
of navigation to ``/ui/#/job/<id>`` (performance.timeOrigin) to the mark the page sets once every chart is
drawn (``jobpulse:job-drawn``), in Debian's headless Chromium driven by Playwright, signed in, against a real
collector process over loopback. Baseline, same run and same browser: the time of the page's one API call
alone (``fetch('/ui/api/job/<id>')`` and its JSON parse), so the ratio is what drawing adds to fetching.
The job is seeded at a 10 s tick: 64 x 8640 = 552 960 sample rows of every job metric, with the ledger
ingest keeps, and the collector's rollup pass is run over it once, as the collector runs it every minute
while a job runs: the store then holds what it holds for a job that ended a few minutes ago (packed
1-minute hours, the last hour's minutes still wide, the last minutes raw only). ``--no-rollup`` leaves
the samples raw only (a collector whose rollups never ran), the state every earlier figure was taken in.

Two figures: the first view (a fresh collector process for each of ``--first-views``, so nothing of the
job is cached: the series are read from the store) and the views after it (one collector, ``--runs``
views after a warm-up, the finished job's series served from the collector's cache).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from api import start_collector
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.sqlite import SqliteStore, connect

JOB = 6464
CHROMIUM = "/usr/bin/chromium"


def seed(path: Path, nodes: int, hours: float, rolled_up: bool = True) -> int:
    store = SqliteStore(path)
    store.open()  # creates and migrates the database; the bench seeds it on a connection of its own
    store.close()
    db = connect(path)
    now = int(time.time())
    start = now - int(hours * 3600)
    names = [f"c{i:04d}" for i in range(nodes)]
    rnd = random.Random(7)
    db.execute("BEGIN")
    db.execute(
        """INSERT INTO jobs (job_id, cluster, user_name, user_id, group_name, account, partition, job_name,
             num_nodes, num_tasks, cpus, gpus_per_node, nodes, nodelist, start_time, stop_time, is_running,
             state, exit_code, source, updated)
           VALUES (?, 'bench', 'admin', 1000, 'grp', 'proj', 'cpu', 'wide', ?, ?, ?, 0, ?, ?, ?, ?, 0,
             'COMPLETED', 0, 'bench', ?)""",
        (JOB, nodes, nodes * 32, nodes * 32, json.dumps(names), ",".join(names), start, now, time.time()),
    )
    cols = ", ".join(JOB_SAMPLE_COLUMNS)
    marks = ", ".join("?" for _ in JOB_SAMPLE_COLUMNS)
    steps = int(hours * 360)
    rows = 0
    for node in names:
        batch = []
        for i in range(steps):
            values = [
                math.inf if c == "mem_limit_bytes" else 32.0 if c == "alloc_cpus" else rnd.random() * 32
                for c in JOB_SAMPLE_COLUMNS
            ]
            batch.append((JOB, node, "", (start + i * 10) * 1000, *values))
        db.executemany(
            f"INSERT INTO job_samples (job_id, node, step, ts, {cols}) VALUES (?, ?, ?, ?, {marks})", batch
        )
        rows += len(batch)
        # the per (job, node, step) ledger ingest keeps: a run's nodes are read from it, and the rollup
        # pass starts from its dirty_1m_ms (the first minute not rolled up yet)
        db.execute(
            "INSERT INTO job_series (job_id, node, step, raw_first_ms, last_ms, dirty_1m_ms)"
            " VALUES (?, ?, '', ?, ?, ?)",
            (JOB, node, start * 1000, (start + (steps - 1) * 10) * 1000, start * 1000),
        )
    db.execute("COMMIT")
    if rolled_up:
        rollup(db, now_ms=now * 1000, lag_ms=60_000)  # the collector's pass (scheduler.py), once
    db.close()
    return rows


def _signed_in_page(browser: Any, url: str, password: str) -> Any:
    """A new browser context (no cookies) signed in to the collector at ``url``: its job list shown."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url + "/ui/")
    page.fill("input[name=user]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("tr.job")
    return page


def _view(page: Any, url: str) -> tuple[float, int, float]:
    """(ms from navigation to every chart drawn, charts drawn, ms of the page's API call alone, after).
    Also prints when, within the view, the page's own request for the job's data started and ended (the
    browser's Resource Timing): the server's and the network's share, the rest is the browser's."""
    page.goto("about:blank")
    page.goto(f"{url}/ui/#/job/{JOB}")
    page.wait_for_function("performance.getEntriesByName('jobpulse:job-drawn').length > 0", timeout=120_000)
    drawn = float(page.evaluate("performance.getEntriesByName('jobpulse:job-drawn')[0].startTime"))
    charts = int(page.locator(".uplot").count())
    start, end = page.evaluate(
        """() => { const e = performance.getEntriesByType('resource').find((r) => r.name.includes('/ui/api/job/'));
           return e ? [e.startTime, e.responseEnd] : [0, 0]; }"""
    )
    print(f"    the page's request for the job: {start:.0f} -> {end:.0f} ms ({end - start:.0f} ms)")
    fetched = float(
        page.evaluate(
            """async (id) => { const t = performance.now();
               const r = await fetch('/ui/api/job/' + id, {credentials: 'same-origin'}); await r.json();
               return performance.now() - t; }""",
            JOB,
        )
    )
    return drawn, charts, fetched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="views after the first, one collector")
    parser.add_argument("--first-views", type=int, default=3, help="first views, a fresh collector each")
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--no-rollup", action="store_true", help="leave the samples raw only")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        t0 = time.monotonic()
        rows = seed(state / "jobpulse.db", args.nodes, args.hours, rolled_up=not args.no_rollup)
        print(
            f"seeded {rows} sample rows ({args.nodes} nodes x {args.hours:g} h) in {time.monotonic() - t0:.1f} s, "
            + ("raw only (no rollup pass)" if args.no_rollup else "then one rollup pass")
        )
        password = "bench-password-1"
        first_ms: list[float] = []
        page_ms: list[float] = []
        api_ms: list[float] = []
        charts = 0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for view in range(args.first_views):  # a fresh collector each: nothing of the job cached
                (state / "ready.json").unlink(missing_ok=True)  # the last collector's: not this one's
                proc, ports = start_collector(state, password)  # bench/api.py's: the same collector process
                url = f"http://127.0.0.1:{ports['http_port']}"
                try:
                    page = _signed_in_page(browser, url, password)
                    drawn, charts, fetched = _view(page, url)
                    first_ms.append(drawn)
                    print(f"first view {view + 1} (fresh collector): page drawn {drawn:.0f} ms ({charts} charts),"
                          f" API call alone afterwards {fetched:.0f} ms")  # fmt: skip
                    if view == args.first_views - 1:  # the views after the first, on the last collector
                        for run in range(args.runs + 1):  # run 0 only repeats the warm-up: not counted
                            drawn, charts, fetched = _view(page, url)
                            if run:
                                page_ms.append(drawn)
                                api_ms.append(fetched)
                            print(f"later view {run}: page drawn {drawn:.0f} ms ({charts} charts), API call alone {fetched:.0f} ms"
                                  + ("  (not counted)" if not run else ""))  # fmt: skip
                    page.context.close()
                finally:
                    proc.terminate()
                    proc.wait(10)
            browser.close()
    med_first = statistics.median(first_ms)
    med_page, med_api = statistics.median(page_ms), statistics.median(api_ms)
    goal = 1000.0
    print(
        f"\n{args.nodes}-node {args.hours:g} h job page ({'raw samples only' if args.no_rollup else 'rolled up'}):"
        f"\n  first view (nothing cached): median {med_first:.0f} ms, worst {max(first_ms):.0f} ms over"
        f" {len(first_ms)} fresh collectors; ratio to the API call alone {med_first / med_api:.2f}"
        f"\n  later views: median {med_page:.0f} ms, worst {max(page_ms):.0f} ms over {len(page_ms)} runs;"
        f" the API call alone: median {med_api:.0f} ms; ratio page/API {med_page / med_api:.2f}"
    )
    for name, values in (("first view", first_ms), ("later views", page_ms)):
        print(
            f"goal: interactive within {goal:.0f} ms, {name}: {'met' if max(values) <= goal else 'MISSED'} (worst run)"
        )
    if not charts:
        raise SystemExit("no chart was drawn: the page had no data, so these figures measure nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
