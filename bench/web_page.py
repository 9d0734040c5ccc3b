"""Web interface benchmark: how long a 64-node, 24-hour job's page takes to be drawn in a real browser.

Usage: scripts/dev.sh run python bench/web_page.py [--runs 7] [--nodes 64] [--hours 24]

Goal (issue 19): the page is interactive within 1 s. Measured with the browser's own clock: from the start
of navigation to ``/ui/#/job/<id>`` (performance.timeOrigin) to the mark the page sets once every chart is
drawn (``jobpulse:job-drawn``), in Debian's headless Chromium driven by Playwright, signed in, against a real
collector process over loopback. Baseline, same run and same browser: the time of the page's one API call
alone (``fetch('/ui/api/job/<id>')`` and its JSON parse), so the ratio is what drawing adds to fetching.
The job is seeded at a 10 s tick: 64 x 8640 = 552 960 sample rows of every job metric.
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

from api import start_collector
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.sqlite import SqliteStore, connect

JOB = 6464
CHROMIUM = "/usr/bin/chromium"


def seed(path: Path, nodes: int, hours: float) -> int:
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
        # the per (job, node, step) ledger ingest keeps: a run's nodes are read from it
        db.execute(
            "INSERT INTO job_series (job_id, node, step, raw_first_ms, last_ms) VALUES (?, ?, '', ?, ?)",
            (JOB, node, start * 1000, (start + (steps - 1) * 10) * 1000),
        )
    db.execute("COMMIT")
    db.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        t0 = time.monotonic()
        rows = seed(state / "jobpulse.db", args.nodes, args.hours)
        print(
            f"seeded {rows} sample rows ({args.nodes} nodes x {args.hours:g} h) in {time.monotonic() - t0:.1f} s"
        )
        password = "bench-password-1"
        proc, ports = start_collector(state, password)  # bench/api.py's: the same collector process
        port = ports["http_port"]
        url = f"http://127.0.0.1:{port}"
        page_ms: list[float] = []
        api_ms: list[float] = []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.goto(url + "/ui/")
                page.fill("input[name=user]", "admin")
                page.fill("input[name=password]", password)
                page.click("button[type=submit]")
                page.wait_for_selector("tr.job")
                for run in range(args.runs + 1):  # the first run warms the collector's cache: not counted
                    page.goto("about:blank")
                    page.goto(f"{url}/ui/#/job/{JOB}")
                    page.wait_for_function(
                        "performance.getEntriesByName('jobpulse:job-drawn').length > 0", timeout=60_000
                    )
                    drawn = page.evaluate("performance.getEntriesByName('jobpulse:job-drawn')[0].startTime")
                    charts = page.locator(".uplot").count()
                    fetched = page.evaluate(
                        """async (id) => { const t = performance.now();
                           const r = await fetch('/ui/api/job/' + id, {credentials: 'same-origin'}); await r.json();
                           return performance.now() - t; }""",
                        JOB,
                    )
                    if run:
                        page_ms.append(drawn)
                        api_ms.append(fetched)
                    print(f"run {run}: page drawn {drawn:.0f} ms ({charts} charts), API call alone {fetched:.0f} ms"
                          + ("  (warm-up, not counted)" if not run else ""))  # fmt: skip
                browser.close()
        finally:
            proc.terminate()
            proc.wait(10)
    med_page, med_api = statistics.median(page_ms), statistics.median(api_ms)
    worst = max(page_ms)
    print(
        f"\n{args.nodes}-node {args.hours:g} h job page drawn: median {med_page:.0f} ms, worst {worst:.0f} ms "
        f"over {len(page_ms)} runs; the API call alone: median {med_api:.0f} ms; ratio page/API {med_page / med_api:.2f}"
    )
    goal = 1000.0
    print(f"goal: interactive within {goal:.0f} ms: {'met' if worst <= goal else 'MISSED'} (worst run)")
    if not charts:
        raise SystemExit("no chart was drawn: the page had no data, so these figures measure nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
