"""Usage ingest with the rollups' upkeep (issue 18): what ``POST /api/data/ingest`` costs on a big history.

Usage:

    scripts/dev.sh run python bench/usage_ingest.py --db PATH [--chunk 2000] [--rounds 10]

``--db``: a history made by bench/usage.py (``--db``); it is copied first, the original is not written.
Each round posts one exporter chunk through the real HTTP path (Litestar's test client, an ingest key):
``--chunk`` new jobs submitted over the 7 days after the history's last day (a new week, as the
exporter's daily cron sends it), then the same chunk again with other figures (the next run's
"updated": the same days recomputed), then that again (the exporter's daily re-send: all "unchanged",
nothing recomputed; reported apart). A write recomputes the days and months it touched, whole, in its
own transaction: the daily rollup, the margins and (since issue 18's charts) ``usage_breakdown``.

``--in-history``: the chunks' weeks lie in the history's last weeks instead (new job ids on days that
already hold the history's jobs): each post then recomputes full days and months, as the exporter's daily
run does on a big cluster (its last 7 days are in the current, already filled month).

Baseline in the same run, same database, same chunks: the same posts with the usage_breakdown upkeep
switched off (what ingest cost before it), alternated round by round with the real one so both see the
same load. Printed: p50 and p95 ms per post of each, and the ratio (with / without).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobpulse.collector.app import create_app
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import usage_breakdown, users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient

DAY = 86400


def chunk(first_id: int, count: int, start: int, variant: int) -> list[dict[str, Any]]:
    """``count`` exporter records over the 7 days from ``start`` (epoch seconds)."""

    def text(epoch: int) -> str:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")

    jobs = []
    for i in range(count):
        submit = start + (i * 7 * DAY) // count
        cpus = 1 << (i % 7)
        jobs.append(
            {
                "JobID": str(first_id + i),
                "User": f"u{(i * 7919) % 400}",
                "Account": f"a{(i * 7919) % 400 % 60}",
                "Partition": ("compute", "gpu", "bigmem", "short")[i % 4],
                "State": ("COMPLETED", "FAILED", "CANCELLED")[(i + variant) % 3],
                "QOS": "normal",
                "Submit": text(submit),
                "Start": text(submit + 60 * (i % 50)),
                "End": text(submit + 60 * (i % 50) + 600 * (1 + i % 30)),
                "CPUHours": cpus * (1 + i % 30) / 6 + variant,
                "GPUHours": 0.0,
                "AllocCPUS": cpus,
                "AllocGPUS": 0,
                "AllocNodes": 1,
                "NodeList": f"n{i % 500}",
            }
        )
    return jobs


def pct(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def measure(path: Path, size: int, rounds: int, in_history: bool = False) -> None:
    settings = CollectorSettings(state_dir=path.parent, database=str(path), admin_password="bench-admin-pw")
    store = SqliteStore(settings.database_path)
    store.open()
    await ensure_admin(store, settings)
    key, _ = users.create_api_key(store._writer_db(), "service:exporter", "ingest", "exporter")
    last = store._writer_db().execute("SELECT max(submit) FROM usage_jobs").fetchone()[0]
    start = (int(last) // DAY + 1 - (rounds * 2 * 7 if in_history else 0)) * DAY
    real_day, real_month = usage_breakdown.recompute_day, usage_breakdown.recompute_month

    def switch(on: bool) -> None:
        def off(*_: object) -> None:
            return None

        usage_breakdown.recompute_day = real_day if on else off  # type: ignore[assignment]
        usage_breakdown.recompute_month = real_month if on else off  # type: ignore[assignment]

    figures: dict[bool, list[float]] = {True: [], False: []}
    resent: dict[bool, list[float]] = {True: [], False: []}
    try:
        async with AsyncTestClient(app=create_app(store, settings)) as client:
            headers = {"X-API-Key": key}

            async def post(jobs: list[dict[str, Any]], want: Callable[[dict[str, Any]], bool]) -> float:
                started = time.perf_counter()
                response = await client.post(
                    "/api/data/ingest", json={"hostname": "bench", "jobs": jobs}, headers=headers
                )
                took = (time.perf_counter() - started) * 1000
                assert response.status_code == 200 and want(response.json()), response.text
                return took

            for index in range(rounds * 2):
                on = index % 2 == 0
                switch(on)
                week = start + index * 7 * DAY
                first = 90_000_000 + index * size
                figures[on].append(await post(chunk(first, size, week, 0), lambda r: r["new"] == size))
                figures[on].append(await post(chunk(first, size, week, 1), lambda r: r["updated"] == size))
                # the exporter's next daily run re-sends the same week: nothing changed, nothing recomputed
                resent[on].append(await post(chunk(first, size, week, 1), lambda r: r["unchanged"] == size))
    finally:
        switch(True)
        store.close()
    with_p50, with_p95 = pct(figures[True])
    without_p50, without_p95 = pct(figures[False])
    print(f"\n{'POST /api/data/ingest, ' + str(size) + ' jobs':44} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'with usage_breakdown upkeep':44} {with_p50:8.1f} {with_p95:8.1f}")
    print(f"{'without (baseline, same run)':44} {without_p50:8.1f} {without_p95:8.1f}")
    print(f"{'ratio with / without':44} {with_p50 / without_p50:8.2f} {with_p95 / without_p95:8.2f}")
    again = [pct(resent[True]), pct(resent[False])]
    print(f"{'the same chunk re-sent (all unchanged), with':44} {again[0][0]:8.1f} {again[0][1]:8.1f}")
    print(f"{'  without':44} {again[1][0]:8.1f} {again[1][1]:8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="a history made by bench/usage.py --db")
    parser.add_argument("--chunk", type=int, default=2000, help="jobs per post (a week at 100,000 a year)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--in-history", action="store_true", help="post into the history's last weeks (full days and months)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jpbench-usage-ingest-") as tmp:
        copy = Path(tmp) / "jobpulse.db"
        shutil.copy(args.db, copy)
        print(
            f"bench/usage_ingest.py: a copy of {args.db}, {args.chunk:,} jobs a post, {args.rounds} rounds each"
            + (", into the history's last weeks" if args.in_history else "")
        )
        asyncio.run(measure(copy, args.chunk, args.rounds, args.in_history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
