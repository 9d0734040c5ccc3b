"""Narrow (one row per metric) vs wide (one row per job-node-tick) raw sample layout: the measurement
behind the schema choice (docs/storage.md).

    scripts/dev.sh run python bench/layout.py [--rows 200000]

Both layouts store the same samples with sqlite3 executemany in 5,000-row transactions into WITHOUT
ROWID tables on a temporary file. Printed: samples/s, bytes per sample on disk, and the time to read one
job-node-day series of two metrics back; the wide layout is the baseline of each ratio.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

METRICS = 16
TX = 5_000


def _wide(db: sqlite3.Connection, rows: int) -> float:
    cols = ", ".join(f"m{i} REAL" for i in range(METRICS))
    db.execute(
        f"CREATE TABLE s (job INTEGER, node TEXT, step TEXT, ts INTEGER, {cols}, PRIMARY KEY (job, node, step, ts)) WITHOUT ROWID"
    )
    sql = f"INSERT INTO s VALUES (?, ?, '', ?, {', '.join('?' for _ in range(METRICS))})"
    data = [
        (
            i // 8640,
            f"node{i % 50:04d}",
            1_700_000_000_000 + i * 10_000,
            *(random.random() * 100 for _ in range(METRICS)),
        )
        for i in range(rows)
    ]
    t = time.perf_counter()
    for i in range(0, rows, TX):
        db.execute("BEGIN")
        db.executemany(sql, data[i : i + TX])
        db.execute("COMMIT")
    return time.perf_counter() - t


def _narrow_ts(db: sqlite3.Connection, rows: int) -> float:
    """Time-first key (appends are cheap) plus the index the job query then needs."""
    db.execute(
        "CREATE TABLE s (job INTEGER, node TEXT, metric INTEGER, ts INTEGER, value REAL, PRIMARY KEY (ts, job, node, metric)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX s_job ON s (job, node, metric, ts)")
    return _fill_narrow(db, rows)


def _narrow(db: sqlite3.Connection, rows: int) -> float:
    db.execute(
        "CREATE TABLE s (job INTEGER, node TEXT, metric INTEGER, ts INTEGER, value REAL, PRIMARY KEY (job, node, metric, ts)) WITHOUT ROWID"
    )
    return _fill_narrow(db, rows)


def _fill_narrow(db: sqlite3.Connection, rows: int) -> float:
    data = [
        (i // 8640, f"node{i % 50:04d}", m, 1_700_000_000_000 + i * 10_000, random.random() * 100)
        for i in range(rows)
        for m in range(METRICS)
    ]
    t = time.perf_counter()
    step = TX  # 5,000 rows per transaction, as for the wide layout
    for i in range(0, len(data), step):
        db.execute("BEGIN")
        db.executemany("INSERT INTO s VALUES (?, ?, ?, ?, ?)", data[i : i + step])
        db.execute("COMMIT")
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=200_000, help="job-node ticks (x16 samples)")
    args = p.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="jobpulse-layout-") as tmp:
        for name, fill, query in (
            ("wide", _wide, "SELECT ts, m2, m4 FROM s WHERE job = 1 AND node = 'node0001' AND step = ''"),
            (
                "narrow",
                _narrow,
                "SELECT ts, metric, value FROM s WHERE job = 1 AND node = 'node0001' AND metric IN (2, 4)",
            ),
            (
                "narrow-ts",
                _narrow_ts,
                "SELECT ts, metric, value FROM s WHERE job = 1 AND node = 'node0001' AND metric IN (2, 4)",
            ),
        ):
            path = Path(tmp) / f"{name}.db"
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            seconds = fill(db, args.rows)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = path.stat().st_size
            db.execute(query).fetchall()
            t = time.perf_counter()
            for _ in range(20):
                db.execute(query).fetchall()
            q = (time.perf_counter() - t) / 20 * 1000
            db.close()
            samples = args.rows * METRICS
            results[name] = (samples / seconds, size / samples, q)
    base = results["wide"]
    for name, (rate, per, q) in results.items():
        print(
            f"{name:9}: {rate / 1e6:.2f} M samples/s ({rate / base[0]:.2f}x wide), {per:.1f} B/sample"
            f" ({per / base[1]:.2f}x), job-node series of 2 metrics {q:.2f} ms ({q / base[2]:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
