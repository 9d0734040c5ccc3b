"""Migration v6 benchmark: how long converting wide 1-minute rows into packed hours takes.

    scripts/dev.sh run python bench/migrate_v6.py [--nodes 64] [--days 7]

Builds a version-5 database holding ``--days`` of 1-minute rows for ``--nodes`` nodes (one wide row
per job, node and minute, as the collector before v6 stored them; jobs are 24 hours on blocks of 64
nodes, every hour already rolled up to 1 hour), then times the migration to the latest version.
Baseline in the same run: reading every one of those rows once (``SELECT *``), the least any
conversion has to do. Prints minutes converted per second, so the time for a site's database can be
estimated from its row count (``SELECT count(*) FROM job_samples_1m``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from jobpulse.collector.store.migrations import COUNTER_COLUMNS, JOB_SAMPLE_COLUMNS, LATEST, migrate
from jobpulse.collector.store.packed import PACKED
from jobpulse.collector.store.sqlite import connect

DAY_MS = 86_400_000
BLOCK = 64
START_MS = 1_780_000_000_000 - 1_780_000_000_000 % DAY_MS


def _values() -> str:
    parts = []
    for c in JOB_SAMPLE_COLUMNS:
        parts += ["t * 0.001"] if c in COUNTER_COLUMNS else ["r * 0.9", "r", "r * 1.1"]
    return ", ".join(parts)


def build_v5(path: Path, nodes: int, days: int) -> int:
    db = connect(path)
    migrate(db, target=5)
    db.execute("BEGIN")
    db.execute(
        f"""WITH RECURSIVE nodes(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM nodes WHERE n < {nodes - 1}),
        days(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM days WHERE d < {days - 1}),
        mins(m) AS (SELECT 0 UNION ALL SELECT m + 1 FROM mins WHERE m < 1439)
        INSERT INTO job_samples_1m
        SELECT job_id, node, '', ts, 6, {_values()} FROM (
            SELECT d * 100 + n / {BLOCK} AS job_id, printf('node%04d', n) AS node,
                   {START_MS} + d * {DAY_MS} + m * 60000 AS ts, m * 60000 AS t,
                   (abs(random()) % 10000) / 100.0 AS r
            FROM days CROSS JOIN nodes CROSS JOIN mins)"""
    )
    db.execute(
        """INSERT INTO job_series (job_id, node, step, last_ms, m1_first_ms)
        SELECT job_id, node, '', max(ts) + 59999, min(ts) FROM job_samples_1m GROUP BY job_id, node"""
    )
    db.execute("COMMIT")
    rows = int(db.execute("SELECT count(*) FROM job_samples_1m").fetchone()[0])
    db.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=64)
    p.add_argument("--days", type=int, default=7)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="jobpulse-migrate-"))
    try:
        path = tmp / "v5.db"
        rows = build_v5(path, args.nodes, args.days)
        db = connect(path)
        t = time.perf_counter()
        for _ in db.execute("SELECT * FROM job_samples_1m"):
            pass
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        migrate(db)
        migrate_s = time.perf_counter() - t
        packed = db.execute(f"SELECT count(*) FROM {PACKED}").fetchone()[0]
        left = db.execute("SELECT count(*) FROM job_samples_1m").fetchone()[0]
        print(
            f"v5 -> v{LATEST}: {rows:,} wide 1-minute rows ({args.nodes} nodes x {args.days} days) -> {packed:,}"
            f" packed rows ({left} left wide) in {migrate_s:.1f} s = {rows / migrate_s:,.0f} minutes/s"
            f" | baseline: reading the rows once {read_s:.1f} s, ratio {migrate_s / read_s:.1f}"
        )
        db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
