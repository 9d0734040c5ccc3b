"""Usage history: one accounting row per (cluster, job) and its daily rollup (the SQL of seed 000's dialect).

``usage_jobs`` holds one row per (cluster, job id as Slurm writes it), from an accounting source (the
exporter's ingest, the sacct backfill) or, for a job only agents saw, from its monitored run (its
allocation times its elapsed time). An accounting record replaces a monitored run's row and keeps the
link (``run_id``), so a job is never counted twice. ``usage_daily`` sums the rows per (cluster, submit
day, partition, account, user, QOS, state), with counts per waiting-time and duration bin
(domain.usage.BIN_BOUNDS). ``usage_marginal`` sums that rollup once more per day and per month, for
the whole cluster (``dim`` "") and per value of each one dimension: a dashboard question without
filters (the page's usual one) reads a month's row for each whole month of its window and a day's row
for the days at its edges, a few hundred rows whatever the window, rather than every job or every
(day, partition, account, user, QOS, state). A question filtered on one dimension (a partition, ..., or
a user's own, narrowed to their jobs) reads that dimension's margins (of its values) and
``usage_breakdown`` (store/usage_breakdown.py: per month its values by every other dimension); one
filtered on two or more reads ``usage_daily``. A write recomputes the days (and months) it touched,
whole, in the same transaction, so every rollup is always exactly the sum of the rows. ``usage_dims`` lists the
values seen per cluster and dimension (the dashboard's filter lists).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.usage import (
    BIN_BOUNDS,
    AccountingRecord,
    Efficiency,
    UsageFilter,
    UsageGroups,
    UsageTotals,
)
from jobpulse.collector.store import usage_breakdown
from jobpulse.collector.store.state import get_state, set_state
from jobpulse.common.validate import InvalidField

DAY = 86400
NBINS = len(BIN_BOUNDS) + 1
DIMENSIONS = ("partition", "account", "user_name", "qos", "state")
_FIGURES = (
    "source", "user_name", "account", "partition", "qos", "state", "submit", "start", "end",
    "cpu_hours", "gpu_hours", "cpus", "gpus", "nodes", "nodelist",
)  # fmt: skip
# jobs.updated (microseconds, rounded up) up to which monitored runs are in usage_jobs
_SYNC_MARK = "usage_monitored_us"

# The schema as migration 10 creates it (store/migrations.py); frozen: a change is a new migration.
SCHEMA = f"""
CREATE TABLE usage_jobs (
    cluster TEXT NOT NULL, job TEXT NOT NULL, source TEXT NOT NULL, run_id INTEGER,
    user_name TEXT NOT NULL, account TEXT NOT NULL, partition TEXT NOT NULL, qos TEXT NOT NULL,
    state TEXT NOT NULL, submit INTEGER NOT NULL, start INTEGER, "end" INTEGER,
    cpu_hours REAL NOT NULL, gpu_hours REAL NOT NULL, cpus INTEGER NOT NULL, gpus INTEGER NOT NULL,
    nodes INTEGER NOT NULL, nodelist TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (cluster, job)
);
CREATE INDEX usage_jobs_submit ON usage_jobs (cluster, submit);
CREATE INDEX usage_jobs_run ON usage_jobs (run_id) WHERE run_id IS NOT NULL;
CREATE TABLE usage_daily (
    cluster TEXT NOT NULL, day INTEGER NOT NULL, partition TEXT NOT NULL, account TEXT NOT NULL,
    user_name TEXT NOT NULL, qos TEXT NOT NULL, state TEXT NOT NULL,
    jobs INTEGER NOT NULL, cpu_hours REAL NOT NULL, gpu_hours REAL NOT NULL,
    waited INTEGER NOT NULL, wait_s REAL NOT NULL, wait_max REAL NOT NULL,
    ran INTEGER NOT NULL, duration_s REAL NOT NULL,
    {", ".join(f"w{i} INTEGER NOT NULL" for i in range(NBINS))},
    {", ".join(f"d{i} INTEGER NOT NULL" for i in range(NBINS))},
    PRIMARY KEY (cluster, day, partition, account, user_name, qos, state)
) WITHOUT ROWID;
CREATE INDEX usage_daily_user ON usage_daily (user_name, cluster, day);
CREATE TABLE usage_marginal (
    cluster TEXT NOT NULL, grain TEXT NOT NULL, dim TEXT NOT NULL, day INTEGER NOT NULL, value TEXT NOT NULL,
    jobs INTEGER NOT NULL, cpu_hours REAL NOT NULL, gpu_hours REAL NOT NULL,
    waited INTEGER NOT NULL, wait_s REAL NOT NULL, wait_max REAL NOT NULL,
    ran INTEGER NOT NULL, duration_s REAL NOT NULL,
    {", ".join(f"w{i} INTEGER NOT NULL" for i in range(NBINS))},
    {", ".join(f"d{i} INTEGER NOT NULL" for i in range(NBINS))},
    PRIMARY KEY (cluster, grain, dim, day, value)
) WITHOUT ROWID;
CREATE TABLE usage_dims (
    cluster TEXT NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (cluster, dim, value)
) WITHOUT ROWID;
CREATE INDEX jobs_updated ON jobs (updated);
"""


def _bins(expr: str, prefix: str) -> str:
    """``sum(CASE ...)`` per bin of ``expr`` (seconds; NULL counts in no bin)."""
    parts = []
    lower: int | None = None
    for index in range(NBINS):
        upper = BIN_BOUNDS[index] if index < len(BIN_BOUNDS) else None
        conds = [f"{expr} IS NOT NULL"]
        if lower is not None:
            conds.append(f"{expr} >= {lower}")
        if upper is not None:
            conds.append(f"{expr} < {upper}")
        parts.append(f"sum({' AND '.join(conds)}) AS {prefix}{index}")
        lower = upper
    return ", ".join(parts)


_WAIT = "(start - submit)"
_DURATION = '("end" - start)'
_ROLLUP_SELECT = f"""
    SELECT cluster, submit / {DAY} AS day, partition, account, user_name, qos, state,
           count(*), sum(cpu_hours), sum(gpu_hours),
           count(start), coalesce(sum(max({_WAIT}, 0)), 0), coalesce(max(max({_WAIT}, 0)), 0),
           count(CASE WHEN start IS NOT NULL AND "end" IS NOT NULL THEN 1 END),
           coalesce(sum(max({_DURATION}, 0)), 0),
           {_bins(f"max({_WAIT}, 0)", "w")}, {_bins(f"max({_DURATION}, 0)", "d")}
    FROM usage_jobs"""


_FIGURE_SUMS = ", ".join(
    [
        "sum(jobs)", "sum(cpu_hours)", "sum(gpu_hours)", "sum(waited)", "sum(wait_s)", "max(wait_max)",
        "sum(ran)", "sum(duration_s)",
        *(f"sum(w{i})" for i in range(NBINS)), *(f"sum(d{i})" for i in range(NBINS)),
    ]
)  # fmt: skip
MARGINS = ("", *DIMENSIONS)  # "": the whole cluster
_MONTH_OF = "CAST(julianday(date(day * 86400, 'unixepoch', 'start of month')) - 2440587.5 AS INTEGER)"


def month_start(day: int) -> int:
    """The first day (days since the epoch) of the month of ``day``."""
    first = date.fromordinal(_EPOCH + day).replace(day=1)
    return first.toordinal() - _EPOCH


def next_month(day: int) -> int:
    first = date.fromordinal(_EPOCH + month_start(day))
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1).toordinal() - _EPOCH


_EPOCH = date(1970, 1, 1).toordinal()


def _margin_value(dim: str) -> str:
    return dim or "''"


def recompute_days(db: sqlite3.Connection, days: Iterable[tuple[str, int]]) -> None:
    """Rebuild the rollup of each (cluster, day) from its rows, and the margins of those days and their
    months; the caller holds the transaction."""
    touched = sorted(set(days))
    for cluster, day in touched:
        db.execute("DELETE FROM usage_daily WHERE cluster = ? AND day = ?", (cluster, day))
        db.execute(
            f"""INSERT INTO usage_daily {_ROLLUP_SELECT}
                WHERE cluster = ? AND submit >= ? AND submit < ?
                GROUP BY partition, account, user_name, qos, state""",
            (cluster, day * DAY, (day + 1) * DAY),
        )
        _margins(db, cluster, "d", day, day, day)
        usage_breakdown.recompute_day(db, cluster, day)
    for cluster, first in sorted({(c, month_start(d)) for c, d in touched}):
        _margins(db, cluster, "m", first, first, next_month(first) - 1)
        usage_breakdown.recompute_month(db, cluster, first, next_month(first))


def _margins(db: sqlite3.Connection, cluster: str, grain: str, key: int, lo: int, hi: int) -> None:
    """The margins of the days [lo, hi] under ``key``: a day's from the daily rollup, a month's ("m")
    from its days' margins (a few times fewer rows than its daily rollup)."""
    for dim in MARGINS:
        db.execute(
            "DELETE FROM usage_marginal WHERE cluster = ? AND grain = ? AND dim = ? AND day = ?",
            (cluster, grain, dim, key),
        )
        if grain == "m":
            db.execute(
                f"""INSERT INTO usage_marginal
                    SELECT cluster, 'm', dim, ?, value, {_FIGURE_SUMS} FROM usage_marginal
                    WHERE cluster = ? AND grain = 'd' AND dim = ? AND day >= ? AND day <= ? GROUP BY value""",
                (key, cluster, dim, lo, hi),
            )
            continue
        value = _margin_value(dim)
        db.execute(
            f"""INSERT INTO usage_marginal
                SELECT cluster, ?, ?, ?, {value}, {_FIGURE_SUMS} FROM usage_daily
                WHERE cluster = ? AND day >= ? AND day <= ? GROUP BY {value}""",
            (grain, dim, key, cluster, lo, hi),
        )


def rebuild_rollup(db: sqlite3.Connection) -> int:
    """The whole rollup and the dimension lists from usage_jobs (a bulk load); the number of rollup rows."""
    db.execute("DELETE FROM usage_daily")
    db.execute(
        f"INSERT INTO usage_daily {_ROLLUP_SELECT} GROUP BY cluster, day, partition, account, user_name, qos, state"
    )
    db.execute("DELETE FROM usage_marginal")
    for dim in MARGINS:
        value = _margin_value(dim)
        db.execute(
            f"""INSERT INTO usage_marginal SELECT cluster, 'd', ?, day, {value}, {_FIGURE_SUMS}
                FROM usage_daily GROUP BY cluster, day, {value}""",
            (dim,),
        )
        db.execute(
            f"""INSERT INTO usage_marginal SELECT cluster, 'm', dim, month, value, {_FIGURE_SUMS}
                FROM (SELECT *, {_MONTH_OF} AS month FROM usage_marginal WHERE grain = 'd' AND dim = ?)
                GROUP BY cluster, month, value""",
            (dim,),
        )
    rebuild_breakdown(db)
    db.execute("DELETE FROM usage_dims")
    for dim in DIMENSIONS:
        db.execute(
            f"INSERT OR IGNORE INTO usage_dims SELECT DISTINCT cluster, ?, {dim} FROM usage_daily", (dim,)
        )
    return int(db.execute("SELECT count(*) FROM usage_daily").fetchone()[0])


def rebuild_breakdown(db: sqlite3.Connection) -> None:
    """usage_breakdown anew for every month and day with jobs (a bulk load, migration 12)."""
    db.execute("DELETE FROM usage_breakdown")
    months = db.execute(
        f"SELECT DISTINCT cluster, {_MONTH_OF} FROM (SELECT DISTINCT cluster, day FROM usage_daily)"
    ).fetchall()
    usage_breakdown.rebuild(db, [(c, int(m), next_month(int(m))) for c, m in months])


def _note_dims(db: sqlite3.Connection, cluster: str, row: dict[str, Any]) -> None:
    for dim in DIMENSIONS:
        db.execute("INSERT OR IGNORE INTO usage_dims VALUES (?, ?, ?)", (cluster, dim, row[dim]))


def _run_of(db: sqlite3.Connection, cluster: str, job: str) -> int | None:
    """The monitored run of this job in this cluster (the newest), if agents or Slurm's records made one."""
    try:
        ref = JobId.parse(job)
    except InvalidField:
        return None
    args: tuple[int, ...]
    if ref.array_task is not None:
        sql, args = "array_job_id = ? AND array_task_id = ?", (ref.job, ref.array_task)
    elif ref.het_offset is not None:
        sql, args = "het_job_id = ? AND het_job_offset = ?", (ref.job, ref.het_offset)
    else:
        sql, args = "job_id = ?", (ref.job,)
    row = db.execute(
        f"SELECT run_id FROM jobs WHERE {sql} AND cluster = ? ORDER BY start_time DESC LIMIT 1",
        (*args, cluster),
    ).fetchone()
    return int(row[0]) if row else None


def _upsert(db: sqlite3.Connection, cluster: str, job: str, row: dict[str, Any], run_id: int | None) -> None:
    columns = ", ".join(_FIGURES)
    db.execute(
        f"""INSERT INTO usage_jobs (cluster, job, run_id, updated, {columns})
            VALUES (?, ?, ?, ?{", ?" * len(_FIGURES)})
            ON CONFLICT (cluster, job) DO UPDATE SET run_id = coalesce(excluded.run_id, run_id),
              updated = excluded.updated, {", ".join(f'"{c}" = excluded."{c}"' for c in _FIGURES)}""",
        [cluster, job, run_id, time.time(), *(row[c] for c in _FIGURES)],
    )


def ingest_accounting(
    db: sqlite3.Connection, cluster: str, records: Sequence[AccountingRecord], source: str
) -> tuple[int, int, int]:
    """Store accounting records of ``cluster`` (the caller holds the transaction): (new, changed,
    unchanged). Idempotent per (cluster, job): the same record again changes nothing."""
    counts = [0, 0, 0]
    dirty: set[tuple[str, int]] = set()
    for record in records:
        row = {
            "source": source,
            "user_name": record.user,
            "account": record.account,
            "partition": record.partition,
            "qos": record.qos,
            "state": record.state,
            "submit": record.submit,
            "start": record.start,
            "end": record.end,
            "cpu_hours": record.cpu_hours,
            "gpu_hours": record.gpu_hours,
            "cpus": record.cpus,
            "gpus": record.gpus,
            "nodes": record.nodes,
            "nodelist": record.nodelist,
        }
        old = db.execute(
            f"SELECT run_id, {', '.join(chr(34) + c + chr(34) for c in _FIGURES)} FROM usage_jobs"
            " WHERE cluster = ? AND job = ?",
            (cluster, record.job),
        ).fetchone()
        if old is not None and old["run_id"] is not None and all(old[c] == row[c] for c in _FIGURES):
            counts[2] += 1
            continue
        run_id = _run_of(db, cluster, record.job)
        if old is not None and all(old[c] == row[c] for c in _FIGURES) and run_id is None:
            counts[2] += 1
            continue
        _upsert(db, cluster, record.job, row, run_id)
        _note_dims(db, cluster, row)
        counts[0 if old is None else 1] += 1
        dirty.add((cluster, record.submit // DAY))
        if old is not None:
            dirty.add((cluster, old["submit"] // DAY))
    recompute_days(db, dirty)
    return counts[0], counts[1], counts[2]


def _job_key(run: sqlite3.Row) -> str:
    if run["array_job_id"] is not None and run["array_task_id"] is not None:
        return f"{run['array_job_id']}_{run['array_task_id']}"
    if run["het_job_id"] is not None and run["het_job_offset"] is not None:
        return f"{run['het_job_id']}+{run['het_job_offset']}"
    return str(run["job_id"])


def monitored_pending(db: sqlite3.Connection) -> bool:
    """Whether a run changed since the last ``sync_monitored`` (a read: no write when nothing did)."""
    mark = get_state(db, _SYNC_MARK) or 0
    return db.execute("SELECT 1 FROM jobs WHERE updated > ? LIMIT 1", (mark / 1e6,)).fetchone() is not None


def sync_monitored(db: sqlite3.Connection, limit: int = 20_000) -> int:
    """Bring ended monitored runs changed since the last call into usage_jobs (the caller holds the
    transaction): a run without an accounting row counts by its allocation (cpus x elapsed, GPUs per
    node x nodes x elapsed); one with an accounting row only gets linked. Runs without a cluster are
    left out (their jobs cannot be matched with any cluster's accounting). The number of runs looked at."""
    mark = get_state(db, _SYNC_MARK) or 0
    runs = db.execute(
        "SELECT * FROM jobs WHERE updated > ? ORDER BY updated LIMIT ?", (mark / 1e6, limit)
    ).fetchall()
    if not runs:
        return 0
    dirty: set[tuple[str, int]] = set()
    for run in runs:
        if run["is_running"] or not run["cluster"]:
            continue
        cluster, job = run["cluster"], _job_key(run)
        old = db.execute(
            "SELECT source, submit FROM usage_jobs WHERE cluster = ? AND job = ?", (cluster, job)
        ).fetchone()
        if old is not None and old["source"] != "monitor":
            db.execute(
                "UPDATE usage_jobs SET run_id = ? WHERE cluster = ? AND job = ?",
                (run["run_id"], cluster, job),
            )
            continue
        start, stop = int(run["start_time"]), int(run["stop_time"] or run["start_time"])
        hours = max(0, stop - start) / 3600
        cpus = int(run["cpus"] or 0)
        nodes = int(run["num_nodes"] or 0) or max(
            1, len(run["nodelist"].split(",")) if run["nodelist"] else 1
        )
        gpus = int(run["gpus_per_node"] or 0) * nodes
        row = {
            "source": "monitor",
            "user_name": run["user_name"],
            "account": run["account"],
            "partition": run["partition"],
            "qos": run["qos"],
            "state": run["state"],
            "submit": start,
            "start": start,
            "end": stop,
            "cpu_hours": cpus * hours,
            "gpu_hours": gpus * hours,
            "cpus": cpus,
            "gpus": gpus,
            "nodes": nodes,
            "nodelist": run["nodelist"],
        }
        _upsert(db, cluster, job, row, int(run["run_id"]))
        _note_dims(db, cluster, row)
        dirty.add((cluster, start // DAY))
        if old is not None:
            dirty.add((cluster, old["submit"] // DAY))
    recompute_days(db, dirty)
    # rounded up, and a microsecond more for the float arithmetic, so the last run is not read again (a
    # run updated within that microsecond, across a batch edge, is the loss: time.time() rarely steps so)
    set_state(db, _SYNC_MARK, math.ceil(runs[-1]["updated"] * 1e6) + 1)
    return len(runs)


# -- reads -------------------------------------------------------------------------------------------------
def _where(f: UsageFilter, day_col: str = "day", prefix: str = "") -> tuple[str, list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if f.cluster is not None:
        conds.append(f"{prefix}cluster = ?")
        args.append(f.cluster)
    if f.since_day is not None:
        conds.append(f"{day_col} >= ?")
        args.append(f.since_day if day_col == "day" else f.since_day * DAY)
    if f.until_day is not None:
        conds.append(f"{day_col} < ?" if day_col != "day" else f"{day_col} <= ?")
        args.append(f.until_day if day_col == "day" else (f.until_day + 1) * DAY)
    for column, values in f.dims().items():
        if values:
            conds.append(f"{prefix}{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


_PERIOD_KEYS = {
    "day": "date(day * 86400, 'unixepoch')",
    "week": "strftime('%Y-W%W', day * 86400, 'unixepoch')",
    "month": "strftime('%Y-%m', day * 86400, 'unixepoch')",
    "quarter": "strftime('%Y', day * 86400, 'unixepoch') || '-Q' || "
    "((CAST(strftime('%m', day * 86400, 'unixepoch') AS INTEGER) + 2) / 3)",
    "year": "strftime('%Y', day * 86400, 'unixepoch')",
}
GROUPINGS = (*(f"period:{p}" for p in _PERIOD_KEYS), "cluster", *DIMENSIONS)


_GROUP_FIGURES = (
    "sum(jobs), sum(cpu_hours), sum(gpu_hours), {users}, sum(wait_s) / nullif(sum(waited), 0), max(wait_max),"
    " sum(duration_s) / nullif(sum(ran), 0), "
    + ", ".join(f"sum(w{i})" for i in range(NBINS))
    + ", "
    + ", ".join(f"sum(d{i})" for i in range(NBINS))
)


# per value of a dimension nothing reads the bins (they are for periods: histograms, quantiles)
_DIM_FIGURES = (
    "sum(jobs), sum(cpu_hours), sum(gpu_hours), {users}, sum(wait_s) / nullif(sum(waited), 0), max(wait_max),"
    " sum(duration_s) / nullif(sum(ran), 0), " + ", ".join(["0"] * (2 * NBINS))
)


def _groups(rows: Iterable[Sequence[Any]]) -> UsageGroups:
    out = UsageGroups()
    for row in rows:
        out.keys.append(str(row[0]))
        out.jobs.append(int(row[1]))
        out.cpu_hours.append(float(row[2]))
        out.gpu_hours.append(float(row[3]))
        out.users.append(int(row[4]))
        out.wait_mean_s.append(float(row[5] or 0))
        out.wait_max_s.append(float(row[6] or 0))
        out.duration_mean_s.append(float(row[7] or 0))
        out.wait_bins.append([int(v) for v in row[8 : 8 + NBINS]])
        out.duration_bins.append([int(v) for v in row[8 + NBINS : 8 + 2 * NBINS]])
    return out


def _unfiltered(f: UsageFilter) -> bool:
    """Whether the margins answer ``f``: one cluster, a window at most, no filter on any dimension."""
    return f.cluster is not None and not any(f.dims().values())


def spans(f: UsageFilter, monthly: bool = True, yearly: bool = False) -> list[tuple[str, int, int]]:
    """The window of ``f`` in pieces: ("y", first, last) the first days of its whole years (when
    ``yearly``), ("m", first, last) the first days of its other whole months (when ``monthly``), ("d",
    first, last) the days at its edges (or the whole window)."""
    lo, hi = usage_breakdown.window(f)
    if yearly:
        first = lo if year_start(lo) == lo else year_start(lo, 1)
        end = year_start(hi + 1)
        if first < end:
            whole = [("y", first, year_start(end - 1))]
            return [*whole, *_month_spans(lo, first - 1, monthly), *_month_spans(end, hi, monthly)]
    return _month_spans(lo, hi, monthly)


def _month_spans(lo: int, hi: int, monthly: bool) -> list[tuple[str, int, int]]:
    first = lo if month_start(lo) == lo else next_month(lo)
    end = month_start(hi + 1)
    if monthly and first < end:
        out = [("m", first, month_start(end - 1)), ("d", lo, first - 1), ("d", end, hi)]
    else:
        out = [("d", lo, hi)]
    return [s for s in out if s[1] <= s[2]]


def year_start(day: int, later: int = 0) -> int:
    """January 1st (days since the epoch) of the year of ``day``, or of ``later`` years after it."""
    return date(date.fromordinal(_EPOCH + day).year + later, 1, 1).toordinal() - _EPOCH


_NARROW = "day, value, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s"


def _margin_rows(
    f: UsageFilter, dim: str, monthly: bool, values: tuple[str, ...] | None = None, columns: str = "*"
) -> tuple[str, list[Any]]:
    """The margin rows of ``dim`` (of its ``values`` only, when given) covering the window of ``f``: a
    month's row per whole month (when ``monthly``), a day's row for every other day; ``columns`` only
    (the bins are most of a row: a question that does not read them leaves them out)."""
    one = f"SELECT {columns} FROM usage_marginal WHERE cluster = ? AND grain = ? AND dim = ? AND day >= ? AND day <= ?"
    if values is not None:
        one += f" AND value IN ({', '.join('?' * len(values))})"
    parts = spans(f, monthly)
    args: list[Any] = []
    for grain, a, b in parts:
        args += [f.cluster, grain, dim, a, b, *(values or ())]
    if not parts:
        return f"SELECT {columns} FROM usage_marginal WHERE 0", []
    return " UNION ALL ".join([one] * len(parts)), args


def _filtered_once(f: UsageFilter) -> tuple[str, tuple[str, ...]] | None:
    """(dimension, values) when ``f`` filters one cluster on exactly one dimension: the margins of that
    dimension and usage_breakdown answer it without reading usage_daily over the whole window."""
    single = usage_breakdown.single_filter(f)
    return single if single is not None and single[0] else None


def _grouped_once(
    db: sqlite3.Connection,
    f: UsageFilter,
    by: str,
    period: str | None,
    users: bool,
    dim: str,
    values: tuple[str, ...],
) -> UsageGroups | None:
    """``grouped`` for a question filtered on one dimension, from that dimension's margins (per period,
    or per its own values) and usage_breakdown (per another dimension); None where the distinct users per
    value of a dimension are asked for (the daily rollup answers those)."""
    if by == "cluster":
        return None
    if period is None and users and by != "user_name":
        return None
    if period is not None or by == dim:
        monthly = period in (None, "month", "quarter", "year")
        key = _PERIOD_KEYS[period] if period is not None else "value"
        source, args = _margin_rows(f, dim, monthly, values, "*" if period is not None else _NARROW)
        figures = _GROUP_FIGURES if period is not None else _DIM_FIGURES
        count = "count(DISTINCT value)" if dim == "user_name" else "0"
        out = _groups(
            db.execute(
                f"SELECT {key} AS k, {figures.format(users=count)} FROM ({source}) GROUP BY k ORDER BY k",
                args,
            ).fetchall()
        )
        if period is not None and dim != "user_name" and users:
            counts = usage_breakdown.distinct_users(db, f, spans(f, monthly), key)
            out.users = [int(counts.get(k, 0)) for k in out.keys]
        return out
    return _dim_groups(usage_breakdown.breakdown(db, f, [by], spans(f))[by], by)


def _dim_groups(rows: list[tuple[Any, ...]], by: str) -> UsageGroups:
    """usage_breakdown's (key, figures...) rows of a dimension as its grouping (no bins; 1 user per user)."""
    return _groups(
        (r[0], r[1], r[2], r[3], 1 if by == "user_name" else 0, r[5] / r[4] if r[4] else None, r[6],
         r[8] / r[7] if r[7] else None, *([0] * (2 * NBINS)))
        for r in rows
    )  # fmt: skip


def grouped(db: sqlite3.Connection, f: UsageFilter, by: str, users: bool = True) -> UsageGroups:
    """The usage of the filtered jobs per ``by`` (one of GROUPINGS), ordered by key. ``users`` False:
    the distinct users per key of a dimension other than the user, or per period, may be left 0 where they
    cost a read of their own.
    Waiting-time and duration bins are counted per period only (per dimension value they are 0)."""
    period = by.partition(":")[2] if by.startswith("period:") else None
    if period is not None and period not in _PERIOD_KEYS:
        raise ValueError(f"cannot group by {by!r}")
    if period is None and by not in ("cluster", *DIMENSIONS):
        raise ValueError(f"cannot group by {by!r}")
    once = _filtered_once(f)
    if once is not None:
        answer = _grouped_once(db, f, by, period, users, *once)
        if answer is not None:
            return answer
    if _unfiltered(f) and by != "cluster":
        monthly = period in (None, "month", "quarter", "year")
        key = _PERIOD_KEYS[period] if period is not None else "value"
        source, args = _margin_rows(
            f, "" if period is not None else by, monthly, columns="*" if period is not None else _NARROW
        )
        figures = _GROUP_FIGURES if period is not None else _DIM_FIGURES
        rows = db.execute(
            f"SELECT {key} AS k, {figures.format(users='0')} FROM ({source}) GROUP BY k ORDER BY k",
            args,
        ).fetchall()
        out = _groups(rows)
        if period is not None and not users:
            return out
        if period is not None:
            source, args = _margin_rows(f, "user_name", monthly, columns="day, value")
            counts = dict(
                db.execute(
                    f"SELECT {key} AS k, count(DISTINCT value) FROM ({source}) GROUP BY k", args
                ).fetchall()
            )
            out.users = [int(counts.get(k, 0)) for k in out.keys]
        elif by == "user_name":
            out.users = [1] * len(out.keys)
        elif users:
            where, args = _where(f)
            counts = dict(
                db.execute(
                    f"SELECT {by}, count(DISTINCT user_name) FROM usage_daily{where} GROUP BY {by}", args
                )
            )
            out.users = [int(counts.get(k, 0)) for k in out.keys]
        return out
    key = _PERIOD_KEYS[period] if period is not None else by
    where, args = _where(f)
    figures = _GROUP_FIGURES if period is not None else _DIM_FIGURES
    rows = db.execute(
        f"""SELECT {key} AS k, {figures.format(users="count(DISTINCT user_name)")}
            FROM usage_daily{where} GROUP BY k ORDER BY k""",
        args,
    ).fetchall()
    return _groups(rows)


def grouped_dims(db: sqlite3.Connection, f: UsageFilter, bys: Sequence[str]) -> dict[str, UsageGroups]:
    """``grouped(f, by, users=False)`` for each dimension of ``bys``, in one read where it saves one: a
    question filtered on one dimension breaks the others down together (one scan of the days at the
    window's edges for all of them, rather than one each: the dashboard asks for three)."""
    for by in bys:
        if by not in DIMENSIONS:
            raise ValueError(f"cannot group by {by!r}")
    once = _filtered_once(f)
    together = [by for by in bys if once is not None and by != once[0]]
    out: dict[str, UsageGroups] = {}
    if together:
        rows = usage_breakdown.breakdown(db, f, together, spans(f))
        out = {by: _dim_groups(rows[by], by) for by in together}
    for by in bys:
        if by not in out:
            out[by] = grouped(db, f, by, users=False)
    return out


def totals(db: sqlite3.Connection, f: UsageFilter, users: bool = True) -> UsageTotals:
    """The filtered jobs' totals; ``users`` False: the distinct users may be left 0 when counting them
    costs a read of its own (the dashboard counts them from ``user_summary``)."""
    if _unfiltered(f):
        source, args = _margin_rows(f, "", True, columns=_NARROW)
        row = db.execute(
            f"""SELECT coalesce(sum(jobs), 0), coalesce(sum(cpu_hours), 0), coalesce(sum(gpu_hours), 0), 0,
                       sum(wait_s) / nullif(sum(waited), 0), max(wait_max) FROM ({source})""",
            args,
        ).fetchone()
        count = 0
        if users:
            source, args = _margin_rows(f, "user_name", True, columns="value")
            count = db.execute(f"SELECT count(DISTINCT value) FROM ({source})", args).fetchone()[0]
        return UsageTotals(int(row[0]), float(row[1]), float(row[2]), int(count), row[4], row[5])
    once = _filtered_once(f)
    if once is not None:
        dim, values = once
        source, args = _margin_rows(f, dim, True, values, _NARROW)
        row = db.execute(
            f"""SELECT coalesce(sum(jobs), 0), coalesce(sum(cpu_hours), 0), coalesce(sum(gpu_hours), 0),
                       sum(wait_s) / nullif(sum(waited), 0), max(wait_max), count(DISTINCT value) FROM ({source})""",
            args,
        ).fetchone()
        if dim == "user_name":
            count = int(row[5])
        else:
            count = usage_breakdown.distinct_users(db, f, spans(f), None).get("", 0) if users else 0
        return UsageTotals(int(row[0]), float(row[1]), float(row[2]), int(count), row[3], row[4])
    where, args = _where(f)
    row = db.execute(
        f"""SELECT coalesce(sum(jobs), 0), coalesce(sum(cpu_hours), 0), coalesce(sum(gpu_hours), 0),
                   count(DISTINCT user_name), sum(wait_s) / nullif(sum(waited), 0), max(wait_max)
            FROM usage_daily{where}""",
        args,
    ).fetchone()
    return UsageTotals(int(row[0]), float(row[1]), float(row[2]), int(row[3]), row[4], row[5])


def clusters(db: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """(cluster, first submit day, last submit day) of every cluster with usage."""
    out = []
    for (cluster,) in db.execute("SELECT DISTINCT cluster FROM usage_dims ORDER BY cluster").fetchall():
        first = db.execute("SELECT min(day) FROM usage_daily WHERE cluster = ?", (cluster,)).fetchone()[0]
        last = db.execute("SELECT max(day) FROM usage_daily WHERE cluster = ?", (cluster,)).fetchone()[0]
        if first is not None:
            out.append((cluster, int(first), int(last)))
    return out


def dimension_values(db: sqlite3.Connection, f: UsageFilter) -> dict[str, list[str]]:
    """The values of each dimension among the filtered jobs: from the list of values seen when the filter
    is only a cluster, else from the rollup."""
    if f.since is None and f.until is None and not any(f.dims().values()) and f.cluster is not None:
        found: dict[str, list[str]] = {d: [] for d in DIMENSIONS}
        for dim, value in db.execute(
            "SELECT dim, value FROM usage_dims WHERE cluster = ? ORDER BY dim, value", (f.cluster,)
        ):
            found[dim].append(value)
        return found
    if _unfiltered(f):
        found = {}
        for dim in DIMENSIONS:
            source, args = _margin_rows(f, dim, True, columns="value")
            found[dim] = [v for (v,) in db.execute(f"SELECT DISTINCT value FROM ({source}) ORDER BY 1", args)]
        return found
    where, args = _where(f)
    return {
        dim: [v for (v,) in db.execute(f"SELECT DISTINCT {dim} FROM usage_daily{where} ORDER BY 1", args)]
        for dim in DIMENSIONS
    }


def efficiency(db: sqlite3.Connection, f: UsageFilter) -> Efficiency:
    """jobpulse's own summaries of the monitored jobs among the filtered ones."""
    where, args = _where(f, day_col="u.submit", prefix="u.")
    # from the summaries (monitored jobs: few) to their usage rows, never the other way round
    row = db.execute(
        f"""SELECT count(*),
                   sum(json_extract(s.summary, '$.cpu_efficiency') * u.cpu_hours)
                     / nullif(sum(CASE WHEN json_extract(s.summary, '$.cpu_efficiency') IS NOT NULL
                                       THEN u.cpu_hours END), 0),
                   avg(json_extract(s.summary, '$.gpu_util_mean_percent'))
            FROM job_summaries s CROSS JOIN usage_jobs u INDEXED BY usage_jobs_run ON u.run_id = s.run_id
            {where}{" AND" if where else " WHERE"} u.run_id IS NOT NULL""",
        args,
    ).fetchone()
    return Efficiency(int(row[0]), row[1], row[2])


def job_rows(db: sqlite3.Connection, f: UsageFilter, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """The filtered jobs themselves, newest submit first."""
    where, args = _where(f, day_col="submit")
    return [
        dict(r)
        for r in db.execute(
            f"SELECT * FROM usage_jobs{where} ORDER BY submit DESC, job LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
    ]


def plain_group_by(db: sqlite3.Connection, cluster: str, by: str) -> list[tuple[Any, ...]]:
    """The same question as ``grouped`` asked of every row (the benchmark's yardstick)."""
    key = "strftime('%Y-%m', submit, 'unixepoch')" if by == "period:month" else by
    return db.execute(
        f"""SELECT {key} AS k, count(*), sum(cpu_hours), sum(gpu_hours), count(DISTINCT user_name)
            FROM usage_jobs WHERE cluster = ? GROUP BY k""",
        (cluster,),
    ).fetchall()


# -- the per-job charts, Color By and user activity (issue 18) -----------------------------------------------
def breakdown(
    db: sqlite3.Connection, f: UsageFilter, kinds: Sequence[str]
) -> dict[str, list[tuple[Any, ...]]]:
    """The filtered jobs per value of ``kind`` (cpus, gpus, nodes, nodelist or a dimension): (key, jobs,
    cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s) by key (store/usage_breakdown.py)."""
    # years only for the whole cluster's questions: only they have a year's rows
    whole = usage_breakdown.single_filter(f) == ("", ("",))
    return usage_breakdown.breakdown(db, f, kinds, spans(f, yearly=whole))


def grouped_by_period_and(
    db: sqlite3.Connection, f: UsageFilter, period: str, by: str
) -> list[tuple[Any, ...]]:
    """(period key, value of ``by``, jobs, cpu_hours, gpu_hours, wait_s, duration_s) of the filtered jobs:
    the dashboard's "Color By" series. From ``by``'s margins when ``f`` filters nothing or only ``by``;
    else from the daily rollup."""
    if period not in _PERIOD_KEYS or by not in DIMENSIONS:
        raise ValueError(f"cannot group by period {period!r} and {by!r}")
    key = _PERIOD_KEYS[period]
    monthly = period in ("month", "quarter", "year")
    single = usage_breakdown.single_filter(f)
    figures = "sum(jobs), sum(cpu_hours), sum(gpu_hours), sum(wait_s), sum(duration_s)"
    if single is not None and single[0] in ("", by):
        source, args = _margin_rows(f, by, monthly, single[1] if single[0] else None)
        sql = f"SELECT {key} AS k, value, {figures} FROM ({source}) GROUP BY k, value ORDER BY k, value"
    else:
        where, args = _where(f)
        sql = f"SELECT {key} AS k, {by}, {figures} FROM usage_daily{where} GROUP BY k, {by} ORDER BY k, {by}"
    return db.execute(sql, args).fetchall()


_FIGURE_COLUMNS = "jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s"


def _user_parts(f: UsageFilter, monthly: bool) -> list[tuple[str, str, list[Any]]]:
    """(grain, SQL, args) pieces of (day, value: the user, figures...) rows of the filtered jobs: the
    user margins when ``f`` filters nothing or only the user, usage_breakdown and the daily rollup when
    it filters one other dimension, the daily rollup otherwise."""
    single = usage_breakdown.single_filter(f)
    if single is not None and single[0] in ("", "user_name"):
        values = single[1] if single[0] else ()
        # grain and dim as literals: the whole months' piece may then use the partial index usage_marginal_users
        only = f" AND value IN ({', '.join('?' * len(values))})" if values else ""
        return [
            (
                grain,
                f"SELECT {_NARROW} FROM usage_marginal WHERE cluster = ? AND grain = '{grain}' AND dim = 'user_name'"
                f" AND day >= ? AND day <= ?{only}",
                [f.cluster, a, b, *values],
            )
            for grain, a, b in spans(f, monthly)
        ]
    if single is not None:
        return usage_breakdown.user_parts(f, spans(f, monthly))
    where, args = _where(f)
    figures = "jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s"
    return [("d", f"SELECT day, user_name AS value, {figures} FROM usage_daily{where}", args)]


def user_summary(
    db: sqlite3.Connection, f: UsageFilter, period: str
) -> tuple[list[tuple[Any, ...]], dict[str, int], dict[str, int]]:
    """The filtered jobs' users, in three small answers: per user (user, jobs, cpu_hours, gpu_hours,
    waited, wait_s, wait_max, ran, duration_s) by user; the distinct users per period key; per user, in how
    many periods they submitted a job (the dashboard's user activity).

    Why not one row per (period, user): over years that is tens of thousands of rows. Per month or day
    (no two pieces of the window share a period) each piece is grouped by SQL in its index order; per
    week, quarter or year the pieces' rows are added up here in one pass, each row's period key looked
    up by its day: SQL's strftime per row and a GROUP BY per answer cost twice as much (bench/usage.py)."""
    if period not in _PERIOD_KEYS:
        raise ValueError(f"cannot group by period {period!r}")
    monthly = period in ("month", "quarter", "year")
    parts = _user_parts(f, monthly)
    if not parts:
        return [], {}, {}
    if period not in ("month", "day"):
        return _user_summary_scan(db, parts, period)
    sums = "sum(jobs), sum(cpu_hours), sum(gpu_hours), sum(waited), sum(wait_s), max(wait_max), sum(ran), sum(duration_s)"

    # each piece grouped on its own (the whole months' piece in the order of the partial index
    # usage_marginal_users: no sort) and added up: no two pieces share a period (months, days)
    # (a whole month's row is keyed by its first day; the days at the window's edges by their period)
    def key_of(grain: str) -> str:
        return "day" if grain == "m" or period == "day" else _PERIOD_KEYS[period]

    merged: dict[str, list[Any]] = {}
    for grain, sql, piece_args in parts:
        for value, count, *figures in db.execute(
            f"SELECT value, count(DISTINCT {key_of(grain)}), {sums} FROM ({sql}) GROUP BY value", piece_args
        ):
            _add_user(merged, value, count, figures)
    users = [(value, *merged[value][1:]) for value in sorted(merged)]
    active = {str(value): int(merged[value][0]) for value in merged}
    per_period: dict[str, int] = {}
    for grain, sql, piece_args in parts:
        key = key_of(grain)
        for k, n in db.execute(
            f"SELECT {key} AS k, count(DISTINCT value) FROM ({sql}) GROUP BY k", piece_args
        ):
            label = k if isinstance(k, str) else _day_label(int(k), period)
            per_period[label] = per_period.get(label, 0) + int(n)
    return users, per_period, active


def _add_user(merged: dict[str, list[Any]], value: str, count: int, figures: Sequence[Any]) -> None:
    """Add a piece's (count, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s) of a
    user to ``merged`` (wait_max is a maximum, the rest sums)."""
    row = merged.get(value)
    if row is None:
        merged[value] = [count, *figures]
        return
    for i, v in enumerate([count, *figures]):
        row[i] = max(row[i], v) if i == 6 else row[i] + v


def _user_summary_scan(
    db: sqlite3.Connection, parts: list[tuple[str, str, list[Any]]], period: str
) -> tuple[list[tuple[Any, ...]], dict[str, int], dict[str, int]]:
    """``user_summary`` for periods that pieces may share (weeks, quarters, years), in one pass over the
    pieces' (day, user, figures...) rows."""
    labels: dict[int, str] = {}
    per_user: dict[str, list[Any]] = {}  # user: [periods, jobs, cpu, gpu, waited, wait_s, wait_max, ran, dur]
    per_period: dict[str, set[str]] = {}
    for _, sql, piece_args in parts:
        for day, user, jobs, cpu, gpu, waited, wait_s, wait_max, ran, duration in db.execute(sql, piece_args):
            label = labels.get(day)
            if label is None:
                label = labels[day] = _day_label(int(day), period)
            row = per_user.get(user)
            if row is None:
                per_user[user] = [{label}, jobs, cpu, gpu, waited, wait_s, wait_max, ran, duration]
            else:
                row[0].add(label)
                row[1] += jobs
                row[2] += cpu
                row[3] += gpu
                row[4] += waited
                row[5] += wait_s
                if wait_max > row[6]:
                    row[6] = wait_max
                row[7] += ran
                row[8] += duration
            seen = per_period.get(label)
            if seen is None:
                per_period[label] = {user}
            else:
                seen.add(user)
    users = [(user, *per_user[user][1:]) for user in sorted(per_user)]
    active = {str(user): len(per_user[user][0]) for user in per_user}
    return users, {label: len(seen) for label, seen in per_period.items()}, active


def _day_label(day: int, period: str) -> str:
    """The period key of a day number, as _PERIOD_KEYS writes it in SQL (weeks as SQLite's and C's
    ``%W``: Monday-based, days before the year's first Monday in week 00)."""
    moment = date.fromordinal(_EPOCH + day)
    if period == "day":
        return moment.isoformat()
    if period == "month":
        return moment.strftime("%Y-%m")
    if period == "week":
        return moment.strftime("%Y-W%W")
    if period == "quarter":
        return f"{moment.year:04d}-Q{(moment.month + 2) // 3}"
    return f"{moment.year:04d}"


def node_hardware(db: sqlite3.Connection, cluster: str | None) -> dict[str, tuple[int, int]]:
    """(CPUs, GPUs) of the nodes whose agents reported them (the ``nodes`` table), of ``cluster`` or of
    no stated cluster: what "% of capacity" is computed against. Nodes without an agent are not known."""
    rows = db.execute(
        "SELECT name, cpus, gpus FROM nodes WHERE cpus IS NOT NULL AND (cluster = ? OR cluster = '')",
        (cluster or "",),
    ).fetchall()
    out: dict[str, tuple[int, int]] = {}
    for name, cpus, gpus in rows:
        try:
            count = len(json.loads(gpus or "[]"))
        except ValueError:
            count = 0
        out[str(name)] = (int(cpus), count)
    return out
