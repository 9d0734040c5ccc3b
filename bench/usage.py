"""Usage history at scale (issue 18): a generated history of one cluster, then the dashboard's questions
through the real HTTP path, each beside a plain SQL GROUP BY over the same rows in the same run.

Usage:

    scripts/dev.sh run python bench/usage.py [--years 5] [--jobs-per-year 2000000] [--db PATH] [--rounds 20]

- generate: ``years x jobs-per-year`` finished jobs in ``usage_jobs`` (one cluster ``bench``; 400 users
  with a skewed share, 60 accounts, 4 partitions, 3 QOS, 6 states, waits up to ~8 h, durations up to a
  day, 1-64 CPUs, GPUs on the gpu partition), written by SQL in the database itself (a recursive
  CTE; Python would take longer than the queries), then the daily rollup rebuilt from them
  (``store.usage.rebuild_rollup``). ``--db`` keeps the database for a later run (generated once).
- measure: through a real Litestar app over the file (Litestar's test client, an admin's session):
  ``GET /api/dashboard/metadata`` (all clusters, no dates: what the page asks first),
  ``POST /api/dashboard/charts`` and ``GET /api/dashboard/stats/bench`` over the page's default window
  (the last 6 weeks, per week; also 6 weeks ending on the 15th, with no whole month in them), the last
  year (per month) and all 5 years (per month); charts also as a
  user (``u300``: narrowed to their own jobs) and filtered to one partition (both read the daily
  rollup, not the margins); ``--rounds`` each, p50 and p95 in ms.
- baseline, in the same run, same rows: the plain SQL a straightforward implementation would run over
  ``usage_jobs`` for the same answer (GROUP BY period with count(DISTINCT user), the five DISTINCT
  lists, the totals), timed the same way but ``--plain-rounds`` times (default 3: at 10M rows one takes
  seconds; its p95 is then the slowest of the 3); the ratio is p95 ours / p95 plain (below 1: faster).

Goal: p95 of metadata, charts and stats <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from jobpulse.collector.app import create_app
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.auth.passwords import hash_password
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import usage, users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient

T0 = 1_609_459_200  # 2021-01-01
DAY = 86400
ADMIN_PASSWORD = "bench-admin-pw"

_ROWS = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?),
h AS (SELECT i, (i * 2654435761) % 4294967296 AS h FROM n),
j AS (
  SELECT i, h,
    ((h % 1000) * (h % 1000)) / 2500 AS u,
    CASE WHEN (h / 1000) % 10 < 6 THEN 'compute' WHEN (h / 1000) % 10 < 8 THEN 'gpu'
         WHEN (h / 1000) % 10 < 9 THEN 'bigmem' ELSE 'short' END AS part,
    ? + (i * ?) / ? + (i * 7919) % 600 AS submit,
    ((h >> 3) % 1000) * ((h >> 13) % 30) AS wait,
    ((h >> 5) % 3600) * ((h >> 17) % 24 + 1) AS dur,
    1 << ((h >> 9) % 7) AS cpus
  FROM h
)
INSERT INTO usage_jobs (cluster, job, source, run_id, user_name, account, partition, qos, state, submit,
                        start, "end", cpu_hours, gpu_hours, cpus, gpus, nodes, nodelist, updated)
SELECT 'bench', CAST(10000000 + i AS TEXT), 'sacct', NULL, 'u' || u, 'a' || (u % 60), part,
  CASE WHEN (h / 10000) % 10 < 8 THEN 'normal' WHEN (h / 10000) % 10 < 9 THEN 'high' ELSE 'low' END,
  CASE WHEN (h / 100000) % 20 < 14 THEN 'COMPLETED' WHEN (h / 100000) % 20 < 16 THEN 'FAILED'
       WHEN (h / 100000) % 20 < 18 THEN 'CANCELLED' WHEN (h / 100000) % 20 < 19 THEN 'TIMEOUT'
       ELSE 'OUT_OF_MEMORY' END,
  submit, submit + wait, submit + wait + dur, cpus * dur / 3600.0,
  CASE WHEN part = 'gpu' THEN ((h >> 11) % 4 + 1) * dur / 3600.0 ELSE 0 END,
  cpus, CASE WHEN part = 'gpu' THEN (h >> 11) % 4 + 1 ELSE 0 END, 1 + (cpus >= 64), 'n' || (h % 500), 0
FROM j
"""


def generate(path: Path, total: int, years: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    span = years * 365 * DAY
    chunk = 500_000
    started = time.perf_counter()
    for first in range(0, total, chunk):
        last = min(total, first + chunk) - 1
        db.execute("BEGIN")
        db.execute(_ROWS, (first, last, T0, span, total))
        db.execute("COMMIT")
        done = last + 1
        rate = done / (time.perf_counter() - started)
        print(f"  generated {done:,}/{total:,} jobs ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    print(f"generate: {total:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    db.execute("BEGIN")
    rows = usage.rebuild_rollup(db)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    print(f"rollup: {rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    db.close()


async def timed(rounds: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    await call()  # warm
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def plain(db: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return db.execute(sql, args).fetchall()

    return run


async def measure(
    path: Path, rounds: int, plain_rounds: int, skip_filtered: bool = False, only: set[str] | None = None
) -> None:
    settings = CollectorSettings(state_dir=path.parent, database=str(path), admin_password=ADMIN_PASSWORD)
    store = SqliteStore(settings.database_path)
    store.open()
    await ensure_admin(store, settings)
    raw = sqlite3.connect(path)
    first, last = raw.execute(
        "SELECT min(submit), max(submit) FROM usage_jobs WHERE cluster = 'bench'"
    ).fetchone()
    total = raw.execute("SELECT count(*) FROM usage_jobs").fetchone()[0]
    rollup = raw.execute("SELECT count(*) FROM usage_daily").fetchone()[0]
    end = date.fromtimestamp(last)
    print(f"measure: {total:,} jobs, {rollup:,} rollup rows, submit days {date.fromtimestamp(first)}..{end}")
    # (name, label, first day, last day, period); the history ends on December 31st, so the last 6
    # weeks hold one whole month: "6w-mid" ends on the 15th, as the page's default window does on most
    # days (no whole month in it: its filtered questions read days only)
    mid = end.replace(day=15)
    windows = [
        ("6w", "6 weeks (page default), per week", end - timedelta(days=42), end, "week"),
        ("6w-mid", "6 weeks to the 15th, per week", mid - timedelta(days=42), mid, "week"),
        ("1y", "1 year, per month", end - timedelta(days=365), end, "month"),
        ("5y", "5 years, per month", date.fromtimestamp(first), end, "month"),
    ]
    windows = [w for w in windows if only is None or w[0] in only]
    rows: list[tuple[str, float, float, float, float]] = []
    try:
        async with AsyncTestClient(app=create_app(store, settings)) as client:
            login = await client.post("/api/login", json={"Username": "admin", "Password": ADMIN_PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['token']}"}

            async def metadata() -> Any:
                response = await client.get("/api/dashboard/metadata", headers=headers)
                assert response.status_code == 200, response.text

            dims = " UNION ALL ".join(
                f"SELECT '{d}', {d} FROM (SELECT DISTINCT {d} FROM usage_jobs WHERE cluster = 'bench')"
                for d in usage.DIMENSIONS
            )
            ours = await timed(rounds, metadata)
            base = await timed(
                rounds,
                plain(
                    raw,
                    f"SELECT min(submit), max(submit) FROM usage_jobs WHERE cluster = ? UNION ALL SELECT 0, 0 FROM ({dims})",
                    ("bench",),
                ),
            )
            rows.append(("metadata (all clusters)", *ours, *base))
            users.upsert_user(store._writer_db(), "u300", ["user"], hash_password("bench-user-pw"))
            user_login = await client.post(
                "/api/login", json={"Username": "u300", "Password": "bench-user-pw"}
            )
            user_headers = {"Authorization": f"Bearer {user_login.json()['token']}"}
            for _, label, since, until, period in windows:
                body = {"hostname": "bench", "start_date": str(since), "end_date": str(until), "period_type": period,
                        "account_segments": 10}  # fmt: skip

                async def charts(body: dict[str, Any] = body) -> Any:
                    response = await client.post("/api/dashboard/charts", json=body, headers=headers)
                    assert response.status_code == 200, response.text

                async def stats(since: date = since, until: date = until) -> Any:
                    params = {"start_date": str(since), "end_date": str(until)}
                    response = await client.get("/api/dashboard/stats/bench", params=params, headers=headers)
                    assert response.status_code == 200, response.text

                lo, hi = (since - date(1970, 1, 1)).days * DAY, ((until - date(1970, 1, 1)).days + 1) * DAY
                key = (
                    "strftime('%Y-W%W', submit, 'unixepoch')"
                    if period == "week"
                    else "strftime('%Y-%m', submit, 'unixepoch')"
                )
                where = "WHERE cluster = 'bench' AND submit >= ? AND submit < ?"
                chart_sql = (
                    f"SELECT {key} k, count(*), sum(cpu_hours), sum(gpu_hours), count(DISTINCT user_name), avg(start - submit) FROM usage_jobs {where} GROUP BY k "
                    f"UNION ALL SELECT state, count(*), 0, 0, 0, 0 FROM usage_jobs {where} GROUP BY state "
                    f"UNION ALL SELECT account, count(*), sum(cpu_hours), sum(gpu_hours), 0, 0 FROM usage_jobs {where} GROUP BY account"
                )
                stats_sql = (
                    f"SELECT count(*), sum(cpu_hours), sum(gpu_hours), count(DISTINCT user_name), 0 FROM usage_jobs {where} "
                    f"UNION ALL SELECT partition, 0, 0, 0, 0 FROM usage_jobs {where} GROUP BY partition"
                )
                ours = await timed(rounds, charts)
                base = await timed(plain_rounds, plain(raw, chart_sql, (lo, hi) * 3))
                rows.append((f"charts, {label}", *ours, *base))
                ours = await timed(rounds, stats)
                base = await timed(plain_rounds, plain(raw, stats_sql, (lo, hi) * 2))
                rows.append((f"stats, {label}", *ours, *base))

                async def user_charts(body: dict[str, Any] = body) -> Any:
                    response = await client.post("/api/dashboard/charts", json=body, headers=user_headers)
                    assert response.status_code == 200, response.text

                async def gpu_charts(body: dict[str, Any] = body) -> Any:
                    filtered = {**body, "partitions": ["gpu"]}
                    response = await client.post("/api/dashboard/charts", json=filtered, headers=headers)
                    assert response.status_code == 200, response.text

                mine = f"{where} AND user_name = 'u300'"
                ours = await timed(rounds, user_charts)
                base = await timed(plain_rounds, plain(raw, chart_sql.replace(where, mine), (lo, hi) * 3))
                rows.append((f"charts as user u300, {label}", *ours, *base))
                gpu = f"{where} AND partition = 'gpu'"
                if skip_filtered and period != "week":
                    print(f"  charts partition=gpu, {label}: not measured (--skip-filtered-long)", flush=True)
                    continue
                ours = await timed(rounds, gpu_charts)
                base = await timed(plain_rounds, plain(raw, chart_sql.replace(where, gpu), (lo, hi) * 3))
                rows.append((f"charts partition=gpu, {label}", *ours, *base))
    finally:
        store.close()
        raw.close()
    print(
        f"\n{'question':44} {'p50 ms':>8} {'p95 ms':>8} {'plain p50':>10} {'plain p95':>10} {'ratio p95':>10}  goal"
    )
    for label, p50, p95, b50, b95 in rows:
        verdict = "ok" if p95 <= 300 else "MISSED"
        print(
            f"{label:44} {p50:8.1f} {p95:8.1f} {b50:10.1f} {b95:10.1f} {p95 / b95:10.3f}  {verdict} (<= 300 ms)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--jobs-per-year", type=int, default=2_000_000)
    parser.add_argument("--db", type=Path, help="keep the generated database here (reused when it exists)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--skip-filtered-long",
        action="store_true",
        help="measure the partition-filtered charts on the 6-week window only (they read the daily rollup)",
    )
    parser.add_argument(
        "--windows",
        help="measure only these windows, comma-separated, of 6w (the last 6 weeks), 6w-mid (6 weeks to the"
        " 15th), 1y, 5y (default: all)",
    )
    parser.add_argument(
        "--plain-rounds", type=int, default=3, help="rounds of each plain GROUP BY (seconds each at 10M rows)"
    )
    args = parser.parse_args()
    total = args.years * args.jobs_per_year
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="jpbench-usage-")
        path = Path(tmp.name) / "jobpulse.db"
    else:
        path = args.db
    print(
        f"bench/usage.py: {args.years} years x {args.jobs_per_year:,} jobs a year, one cluster; pid {os.getpid()}"
    )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(path)
        store.open()  # the schema, by the migrations
        store.close()
        generate(path, total, args.years)
    only = set(args.windows.split(",")) if args.windows else None
    asyncio.run(measure(path, args.rounds, args.plain_rounds, args.skip_filtered_long, only))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
