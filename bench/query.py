"""Query benchmark: a generated 30-day, 500-node database; series, jobs list, summary; rollup growth.

    scripts/dev.sh run python bench/query.py [--nodes 500] [--days 30] [--raw-hours 24] [--jobs 1000000]
        [--db PATH]   # generate PATH if missing, else reuse it and run only the queries

The database holds what the real system holds after ``--days`` of operation with the default
retention: 1-minute rollups (packed by hour, schema v6: one row per job, node, column and hour) and
1-hour rollups for the whole period (1-minute data is kept 90 days), raw 10-second samples only for
the most recent ``--raw-hours`` (retention keeps 14 days = 336 hours; the default here is smaller so
the run fits the shared development machine: raw size is reported per sample so the full figure can
be extrapolated). Rows are generated inside SQLite (recursive CTEs, in primary-key order; packed
hours drawn from a pool of random hours made in Python) with no journal, because generating tens of
millions of rows through Python would take longer than the queries under test. Jobs: each day,
every block of 64 nodes runs one 24-hour job; plus ``--jobs`` jobs-table rows (2,000 users) for the
list query. Without ``--db`` the database is written to a temporary directory and deleted afterwards
(``--keep`` to keep it).

Each figure is printed with its baseline from the same run: the series query against a plain
SELECT of the same minutes in the previous (pre-v6, one wide row per minute) layout, kept for the
measured job in a side table, and against a plain SELECT of the packed rows it reads (the floor);
the list query against the same SELECT without the user index (ratio shows what the index buys);
the summary read against a primary-key lookup of the jobs row.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobpulse.collector.findings import Thresholds
from jobpulse.collector.store.ingest import ingest_batch
from jobpulse.collector.store.jobs import run_of, run_scope
from jobpulse.collector.store.migrations import COUNTER_COLUMNS, JOB_SAMPLE_COLUMNS, LATEST, migrate
from jobpulse.collector.store.packed import COLUMNS, PACKED, encode
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.series import job_series, job_series_points
from jobpulse.collector.store.sqlite import connect
from jobpulse.collector.store.summaries import load_summary, run_figures, store_summary
from jobpulse.collector.summary import build_summary
from jobpulse.proto.v1 import ingest_pb2 as pb

DAY_MS = 86_400_000
BLOCK = 64
END_MS = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS  # midnight: the "now" of the generated DB
POOL = 1024  # distinct random gauge hours the packed rows are drawn from
OLD = "bench_wide_1m"  # the measured job's minutes in the pre-v6 layout, for the baseline


def _nodes_cte(nodes: int) -> str:
    return f"nodes(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM nodes WHERE n < {nodes - 1})"


def _days_cte(days: int) -> str:
    return f"days(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM days WHERE d < {days - 1})"


def _rollup_values(prefix: str) -> str:
    """Generated wide rollup columns: counters grow with time, gauges vary around a per-row random level."""
    parts = []
    for c in JOB_SAMPLE_COLUMNS:
        if c in COUNTER_COLUMNS:
            parts.append(f"{prefix}t * 0.001")
        else:
            parts += ["r * 0.9", "r", "r * 1.1"]
    return ", ".join(parts)


def _pool(db: sqlite3.Connection) -> None:
    """Packed hour values to draw from: POOL random gauge hours (min/avg/max of one level), counters, n.

    Gauges: each minute a random level r in [0, 100) with 2 decimals (min 0.9 r, max 1.1 r), like the
    previous wide generator; counters: seconds since midnight at each minute (one array per hour of the
    day); n: 6 samples (10 s ticks) in every minute.
    """
    rng = random.Random(5)
    db.execute(
        "CREATE TEMP TABLE pool (stat TEXT, i INTEGER, vals BLOB, PRIMARY KEY (stat, i)) WITHOUT ROWID"
    )
    rows = [("n", 0, encode(array("d", [6.0] * 60)))]
    for i in range(POOL):
        level = [rng.randrange(10_000) / 100 for _ in range(60)]
        for stat, f in (("min", 0.9), ("avg", 1.0), ("max", 1.1)):
            rows.append((stat, i, encode(array("d", [v * f for v in level]))))
    for h in range(24):
        rows.append(("last", h, encode(array("d", [(h * 60 + m) * 60.0 for m in range(60)]))))
    db.executemany("INSERT INTO pool VALUES (?, ?, ?)", rows)
    db.execute("CREATE TEMP TABLE cols (k INTEGER PRIMARY KEY, name TEXT, stat TEXT, metric INTEGER)")
    names = sorted(COLUMNS)  # key order, so rows are appended to the B-tree in order
    metric_of = {c: i for i, c in enumerate(JOB_SAMPLE_COLUMNS)}
    db.executemany(
        "INSERT INTO cols (name, stat, metric) VALUES (?, ?, ?)",
        [(c, "n" if c == "n" else c.rsplit("_", 1)[1], metric_of.get(c.rsplit("_", 1)[0], 0)) for c in names],
    )


def generate(db: sqlite3.Connection, nodes: int, days: int, raw_hours: int, jobs: int) -> dict[str, float]:
    """Fill the database; returns seconds per phase."""
    timing: dict[str, float] = {}
    start_ms = END_MS - days * DAY_MS
    blocks = math.ceil(nodes / BLOCK)
    t = time.perf_counter()
    _pool(db)
    db.execute("BEGIN")
    # Packed 1-minute hours for the whole period, in primary-key order: (day, node) is (job, node), then
    # column, then hour. CROSS JOIN keeps SQLite's loop order as written, so no sort is needed. The
    # gauge hour drawn from the pool is a hash of (day, node, hour, metric): min/avg/max agree.
    db.execute(
        f"""WITH RECURSIVE {_nodes_cte(nodes)}, {_days_cte(days)},
        hours(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM hours WHERE h < 23)
        INSERT INTO {PACKED} (job_id, node, step, col, hour, vals)
        SELECT d * 100 + n / {BLOCK}, printf('node%04d', n), '', c.name, {start_ms} + d * {DAY_MS} + h * 3600000,
            (SELECT vals FROM pool WHERE stat = c.stat AND i = CASE c.stat WHEN 'n' THEN 0 WHEN 'last' THEN h
                ELSE (d * 7919 + n * 104729 + h * 31 + c.metric * 613) % {POOL} END)
        FROM days CROSS JOIN nodes CROSS JOIN cols AS c CROSS JOIN hours"""
    )
    db.execute("COMMIT")
    timing["1m packed rows"] = time.perf_counter() - t
    t = time.perf_counter()
    db.execute("BEGIN")
    # Hourly rows: the same value shapes (they are read only by coarse queries, not measured here).
    db.execute(
        f"""WITH RECURSIVE {_nodes_cte(nodes)}, {_days_cte(days)},
        hours(h) AS (SELECT 0 UNION ALL SELECT h + 1 FROM hours WHERE h < 23)
        INSERT INTO job_samples_1h
        SELECT job_id, node, '', ts, 360, {_rollup_values("")} FROM (
            SELECT d * 100 + n / {BLOCK} AS job_id, printf('node%04d', n) AS node,
                   {start_ms} + d * {DAY_MS} + h * 3600000 AS ts, (h + 1) * 3600000 - 60000 AS t,
                   (abs(random()) % 10000) / 100.0 AS r
            FROM days CROSS JOIN nodes CROSS JOIN hours)"""
    )
    db.execute("COMMIT")
    timing["1h rows"] = time.perf_counter() - t
    t = time.perf_counter()
    raw_from = END_MS - raw_hours * 3_600_000
    cols = ", ".join(JOB_SAMPLE_COLUMNS)
    values = ", ".join(
        "(ts - day0) * 0.001" if c in COUNTER_COLUMNS else "(abs(random()) % 10000) / 100.0"
        for c in JOB_SAMPLE_COLUMNS
    )
    db.execute("BEGIN")
    if raw_hours:
        db.execute(
            f"""WITH RECURSIVE {_nodes_cte(nodes)},
            ticks(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM ticks WHERE k < {raw_hours * 360 - 1})
            INSERT INTO job_samples (job_id, node, step, ts, {cols})
            SELECT job_id, node, '', ts, {values} FROM (
                SELECT ((ts0 - {start_ms}) / {DAY_MS}) * 100 + n / {BLOCK} AS job_id, printf('node%04d', n) AS node,
                       ts0 AS ts, ts0 - ts0 % {DAY_MS} AS day0
                FROM nodes CROSS JOIN (SELECT {raw_from} + k * 10000 AS ts0, k FROM ticks))"""
        )
    db.execute(
        f"""WITH RECURSIVE {_nodes_cte(nodes)}, {_days_cte(days)}
        INSERT INTO job_series (job_id, node, step, raw_first_ms, last_ms, m1_first_ms)
        SELECT d * 100 + n / {BLOCK}, printf('node%04d', n), '', NULL, {start_ms} + (d + 1) * {DAY_MS} - 1,
               {start_ms} + d * {DAY_MS}
        FROM days CROSS JOIN nodes"""
    )
    db.execute(
        """UPDATE job_series SET raw_first_ms = (SELECT min(ts) FROM job_samples s WHERE s.job_id = job_series.job_id
           AND s.node = job_series.node AND s.step = '')"""
    )
    for key, value in (
        ("rollup_1m_upto_ms", END_MS),
        ("rollup_1h_upto_ms", END_MS),
        ("raw_kept_from_ms", raw_from),
    ):
        db.execute("INSERT OR REPLACE INTO storage_state VALUES (?, ?)", (key, value))
    db.execute("COMMIT")
    timing["raw rows"] = time.perf_counter() - t
    t = time.perf_counter()
    db.execute("BEGIN")
    # The sampled big jobs, then --jobs more over the last year for the list query.
    db.execute(
        f"""WITH RECURSIVE {_days_cte(days)},
        blocks(b) AS (SELECT 0 UNION ALL SELECT b + 1 FROM blocks WHERE b < {blocks - 1})
        INSERT INTO jobs (job_id, cluster, user_name, partition, num_nodes, cpus, mem_requested_bytes, nodes,
                          start_time, stop_time, is_running, state, updated)
        SELECT d * 100 + b, 'c', 'user0001', 'batch', {BLOCK}, 64, 256e9, '[]',
               ({start_ms} + d * {DAY_MS}) / 1000, ({start_ms} + (d + 1) * {DAY_MS}) / 1000, 0, 'COMPLETED', 0
        FROM days, blocks"""
    )
    db.execute(
        f"""WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {jobs})
        INSERT INTO jobs (job_id, cluster, user_name, partition, num_nodes, cpus, nodes, start_time, stop_time,
                          is_running, state, updated)
        SELECT 10000000 + i, 'c', printf('user%04d', abs(random()) % 2000),
               CASE abs(random()) % 3 WHEN 0 THEN 'batch' WHEN 1 THEN 'gpu' ELSE 'debug' END,
               1 + abs(random()) % 16, 32, '[]', st, st + abs(random()) % 86400, 0,
               CASE abs(random()) % 4 WHEN 0 THEN 'FAILED' ELSE 'COMPLETED' END, 0
        FROM (SELECT i, {END_MS // 1000} - abs(random()) % (365 * 86400) AS st FROM k)"""
    )
    db.execute("COMMIT")
    timing["jobs rows"] = time.perf_counter() - t
    t = time.perf_counter()
    _old_layout(db, days - 2, start_ms)
    timing["baseline table"] = time.perf_counter() - t
    db.execute("ANALYZE")
    return timing


def _old_layout(db: sqlite3.Connection, day: int, start_ms: int) -> None:
    """The measured job's minutes in the previous layout (one wide row per minute), for the baseline.

    Same schema and generator as the 1-minute table had before migration v6, for the one job (64 nodes,
    1,440 minutes) the series query reads; the full-size table of that layout was 21.6 M rows, 7.9 GiB.
    """
    db.execute("BEGIN")
    cols = ", ".join(f"{c} {'INTEGER' if c == 'n' else 'REAL'}" for c in COLUMNS)
    db.execute(
        f"CREATE TABLE {OLD} (job_id INTEGER NOT NULL, node TEXT NOT NULL, step TEXT NOT NULL, ts INTEGER NOT NULL,"
        f" {cols}, PRIMARY KEY (job_id, node, step, ts)) WITHOUT ROWID"
    )
    db.execute(
        f"""WITH RECURSIVE nodes(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM nodes WHERE n < {BLOCK - 1}),
        mins(m) AS (SELECT 0 UNION ALL SELECT m + 1 FROM mins WHERE m < 1439)
        INSERT INTO {OLD}
        SELECT job_id, node, '', ts, 6, {_rollup_values("")} FROM (
            SELECT {day * 100} AS job_id, printf('node%04d', n) AS node,
                   {start_ms} + {day} * {DAY_MS} + m * 60000 AS ts, m * 60000 AS t,
                   (abs(random()) % 10000) / 100.0 AS r
            FROM nodes CROSS JOIN mins)"""
    )
    db.execute("COMMIT")


def percentiles(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm the page cache once, like a second user looking at the same job
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]


def table_bytes(db: sqlite3.Connection, table: str) -> int:
    return int(
        db.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?", (table,)).fetchone()[0]
    )


def new_minute(db: sqlite3.Connection, nodes: int, minutes: int, first_ms: int, seq: int) -> int:
    """``minutes`` of fresh raw samples for every node through the real ingest path; returns the next seq."""
    for n in range(nodes):
        batch = pb.Batch(seq=seq)
        seq += 1
        for k in range(minutes * 6):
            ts = first_ms + k * 10_000
            batch.jobs.job_id.append(str(999_000 + n // BLOCK))
            batch.jobs.step.append("")
            batch.jobs.time_ms.append(ts)
            for c in JOB_SAMPLE_COLUMNS:
                getattr(batch.jobs, c).append(float(k))
        ingest_batch(db, f"node{n:04d}", "bench", "c", batch)
    return seq


def rollup_growth(db: sqlite3.Connection, nodes: int, label: str) -> list[str]:
    """New raw data through the real ingest path, then one rollup pass; each round in a fresh hour.

    Rounds start an hour after the newest data already stored, so a kept database can be re-run. The
    1, 2 and 4-minute rounds measure the 1-minute pass (and the 1-hour row of the previous round's
    hour, which has too few minutes to be packed); the last round fills a whole hour and times the
    pass that completes it: one new minute per series plus packing every series' 60 minutes.
    """
    lines = []
    seq = 1 + (db.execute("SELECT max(last_seq) FROM agent_streams").fetchone()[0] or 0)
    newest = max(END_MS, db.execute("SELECT max(last_ms) FROM job_series").fetchone()[0] or 0)
    base = newest - newest % 3_600_000 + 3_600_000
    for minutes in (1, 2, 4):
        first = base + 3_600_000 * minutes  # a fresh hour each time: no overlap with earlier rounds
        seq = new_minute(db, nodes, minutes, first, seq)
        t = time.perf_counter()
        result = rollup(db, now_ms=first + minutes * 60_000 + 60_000)
        ms = (time.perf_counter() - t) * 1000
        lines.append(
            f"  rollup pass, {label}: {minutes} new minute(s) x {nodes} nodes = {nodes * minutes * 6} raw rows ->"
            f" {result.rows_1m} 1m rows, {result.rows_1h} 1h rows, in {ms:.0f} ms"
        )
    first = base + 3_600_000 * 5
    seq = new_minute(db, nodes, 60, first, seq)
    rollup(db, now_ms=first + 3_600_000)  # minutes 0-58
    t = time.perf_counter()
    result = rollup(db, now_ms=first + 3_600_000 + 60_000)  # minute 59, and the hour is complete
    ms = (time.perf_counter() - t) * 1000
    lines.append(
        f"  rollup pass, {label}: the hour's last minute x {nodes} nodes ({nodes * 6} raw rows) -> {result.rows_1m}"
        f" 1m rows, then {result.rows_1h} complete hours packed ({result.rows_1h * len(COLUMNS):,} packed rows)"
        f" + 1h rows, in {ms:.0f} ms"
    )
    return lines


def _open(path: Path, args: argparse.Namespace) -> sqlite3.Connection:
    """The benchmark database at ``path``: reused if it was generated with the same parameters."""
    wanted = f"nodes={args.nodes} days={args.days} raw_hours={args.raw_hours} jobs={args.jobs} v={LATEST}"
    if path.exists():
        db = connect(path)
        try:
            row = db.execute("SELECT value FROM bench_params").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is not None and row[0] == wanted:
            print(f"reusing {path} ({wanted})")
            return db
        db.close()
        raise SystemExit(f"{path} exists but was not generated with {wanted}: remove it or pass another --db")
    db = connect(path)
    # Generation writes ~8 GiB once: no rollback journal and no WAL (that would write every page twice).
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    migrate(db)
    print(f"generating {args.days} days x {args.nodes} nodes (raw: last {args.raw_hours} h) in {path}")
    t0 = time.perf_counter()
    timing = generate(db, args.nodes, args.days, args.raw_hours, args.jobs)
    db.execute("CREATE TABLE bench_params (value TEXT)")
    db.execute("INSERT INTO bench_params VALUES (?)", (wanted,))
    print(
        f"  generated in {time.perf_counter() - t0:.0f} s: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timing.items())
    )
    db.close()
    db = connect(path)  # back to the collector's settings (WAL)
    return db


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=500)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--raw-hours", type=int, default=24, help="raw 10 s samples kept (default retention: 336)")
    p.add_argument("--jobs", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument(
        "--db", type=Path, help="database file: generated if missing, reused (queries only) if not"
    )
    p.add_argument("--keep", action="store_true", help="keep the generated temporary database")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="jobpulse-bench-"))
    path = args.db or tmp / "bench.db"
    try:
        db = _open(path, args)
        db.execute("PRAGMA cache_size = -262144")
        report(db, args)
        print("rollup run time vs data volume (must follow the new data, not the table size):")
        for line in rollup_growth(db, args.nodes, "full database"):
            print(line)
        small = connect(tmp / "small.db")
        migrate(small)
        for line in rollup_growth(small, args.nodes, "empty database"):
            print(line)
        small.close()
        db.close()
    finally:
        if args.keep and not args.db:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(db: sqlite3.Connection, args: argparse.Namespace) -> None:
    """Sizes and the query latencies, each with its same-run baseline."""
    size = sum(Path(r[2]).stat().st_size for r in db.execute("PRAGMA database_list") if r[1] == "main")
    print(f"  database size {size / 2**30:.2f} GiB")
    metrics = len(JOB_SAMPLE_COLUMNS)
    for table, per_row in (
        ("job_samples", metrics),
        (PACKED, 360 * metrics / len(COLUMNS)),
        ("job_samples_1m", metrics * 6),
        ("job_samples_1h", metrics * 360),
        (OLD, metrics * 6),
    ):
        rows = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        b = table_bytes(db, table)
        if rows:
            print(
                f"  {table}: {rows:,} rows, {b / 2**20:,.0f} MiB, {b / rows:.0f} B/row,"
                f" {b / (rows * per_row):.2f} B per raw sample represented ({per_row:g} samples per row)"
            )
    raw_rows = db.execute("SELECT count(*) FROM job_samples").fetchone()[0]
    if raw_rows:
        full = table_bytes(db, "job_samples") / raw_rows * args.nodes * 8640 * 14
        print(f"  extrapolated raw table at 14 days retention: {full / 2**30:.1f} GiB")

    job = (args.days - 2) * 100  # a 64-node, 24-hour job two days ago
    metrics_q = ["cpu_cores", "mem_current_bytes"]

    def series() -> dict[str, Any]:
        return job_series(db, job, metrics_q, 60, "avg")

    out = series()
    points = sum(len(v["v"]) for m in out["series"].values() for v in m.values())
    nodes = [f"node{n:04d}" for n in range(BLOCK)]
    wanted = ["n", "cpu_cores_avg", "mem_current_bytes_avg"]

    plain = db.cursor()
    plain.row_factory = None  # tuples, as job_series reads them: the cheapest plain SELECT

    def packed_rows() -> object:
        return plain.execute(
            f"SELECT node, col, hour, vals FROM {PACKED} WHERE job_id = ? AND node IN ({', '.join('?' * len(nodes))})"
            " AND step = '' AND col IN (?, ?, ?)",
            (job, *nodes, *wanted),
        ).fetchall()

    def old_rows() -> object:
        return plain.execute(
            f"SELECT node, ts, cpu_cores_avg, mem_current_bytes_avg FROM {OLD} WHERE job_id = ? AND step = ''",
            (job,),
        ).fetchall()

    s50, s95 = percentiles(series, args.runs)
    p50, p95 = percentiles(packed_rows, args.runs)
    o50, o95 = percentiles(old_rows, args.runs)
    print(
        f"series 64 nodes x 24 h, cpu+mem @60 s ({points} points, {out['resolutions']}):"
        f" p50 {s50:.1f} ms p95 {s95:.1f} ms (goal p95 <= 50)\n"
        f"  | baseline: plain SELECT of the same minutes in the previous wide layout ({len(old_rows())} rows):"  # type: ignore[arg-type]
        f" p50 {o50:.1f} p95 {o95:.1f} ms, ratio {s50 / o50:.3f}\n"
        f"  | floor: plain SELECT of the packed rows it reads ({len(packed_rows())} rows, not decoded):"  # type: ignore[arg-type]
        f" p50 {p50:.1f} p95 {p95:.1f} ms, ratio {s50 / p50:.2f}"
    )

    run = run_of(db.execute("SELECT * FROM jobs WHERE job_id = ?", (job,)).fetchone())

    def adapter() -> object:  # what GET /api/job/{id} calls: the run's scope, then JobMon's point pairs
        return job_series_points(db, run_scope(db, run), metrics_q, 60, "mean")

    j50, j95 = percentiles(adapter, args.runs)
    print(f"same through the API adapter (job_series_points, point pairs): p50 {j50:.1f} ms p95 {j95:.1f} ms")

    def across() -> object:
        return job_series(db, job, metrics_q, 300, "max", across_nodes=True)

    a50, a95 = percentiles(across, args.runs)
    print(f"series across nodes @300 s max: p50 {a50:.1f} ms p95 {a95:.1f} ms")

    lst = (
        "SELECT * FROM jobs {idx} WHERE user_name = ? AND partition = ? AND state = ? AND start_time >= ?"
        " ORDER BY start_time DESC LIMIT 100"
    )
    since = END_MS // 1000 - 180 * 86400
    user = db.execute("SELECT user_name FROM jobs WHERE job_id > 10000000 LIMIT 1").fetchone()[0]

    def listq() -> object:
        return db.execute(lst.format(idx=""), (user, "batch", "COMPLETED", since)).fetchall()

    def noidx() -> list[sqlite3.Row]:
        return db.execute(lst.format(idx="NOT INDEXED"), (user, "batch", "COMPLETED", since)).fetchall()

    n = len(listq())  # type: ignore[arg-type]
    l50, l95 = percentiles(listq, args.runs)
    n50, _ = percentiles(noidx, max(3, args.runs // 10))
    total = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    print(
        f"jobs list, one user + partition/state/time filters over {total:,} jobs ({n} rows):"
        f" p50 {l50:.1f} ms p95 {l95:.1f} ms (goal p95 <= 100) | without index p50 {n50:.0f} ms, ratio {l50 / n50:.3f}"
    )

    run_id = db.execute("SELECT run_id FROM jobs WHERE job_id = ?", (job,)).fetchone()[0]
    t = time.perf_counter()
    figures = run_figures(db, run_id, now=END_MS / 1000)  # the summary pass's steps, on one connection
    assert figures is not None
    summary = build_summary(figures, Thresholds())
    store_summary(db, run_id, END_MS / 1000, summary.to_dict(), [f.rule for f in summary.findings])
    compute_ms = (time.perf_counter() - t) * 1000

    def read() -> object:
        return load_summary(db, run_id)

    def pk() -> object:
        return db.execute("SELECT * FROM jobs WHERE run_id = ?", (run_id,)).fetchone()

    r50, r95 = percentiles(read, args.runs)
    k50, _ = percentiles(pk, args.runs)
    print(
        f"job summary read: p50 {r50:.2f} ms p95 {r95:.2f} ms | jobs row by key p50 {k50:.3f} ms, ratio {r50 / k50:.1f};"
        f" computing it at job end (64 nodes, from 1-minute rollups): {compute_ms:.0f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
