"""Usage per month broken down one more way: what filtered dashboard questions and the per-job charts read.

Why: a dashboard question filtered on one dimension (a partition, an account, a QOS, a state, a user, or a
user's own view, which is a filter on the user) used to read ``usage_daily`` over its whole window: on a
big history that rollup is about as large as the jobs themselves and carries 16 bin counters a row, so
one partition's 5 years took minutes. ``usage_monthly_by`` holds, per (cluster, filtered dimension and
value, month), the figures broken down by a second dimension (``kind`` a dimension, ``key`` its value) and
the per-job sizes the "Allocated Resources" and "Usage by Node" charts draw (``kind`` cpus, gpus, nodes:
``key`` the count; ``kind`` nodelist: ``key`` the job's node list as sacct printed it). ``dim`` "" is the
whole cluster (sizes only: its dimensions are in ``usage_marginal``). A question reads a month's rows for
every whole month of its window and groups the jobs of its partial first and last months themselves
(``usage_jobs`` by its (cluster, submit) index), so it reads a few thousand rows whatever its span.

Left out, on purpose: node lists per user (a user's jobs on hundreds of nodes every month would make the
table larger than the jobs); a question about a user's node usage reads that user's jobs through the
``usage_jobs_user`` index instead. A question filtered on two dimensions or more is not answered here
(``answers`` says so) and reads the daily rollup or the jobs as before.

A write recomputes the months it touched, whole, in its own transaction (store/usage.py
``recompute_days``), like the other rollups.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from jobpulse.collector.domain.usage import UsageFilter

DAY = 86400
DIMENSIONS = ("partition", "account", "user_name", "qos", "state")
SIZES = ("cpus", "gpus", "nodes")
KINDS = (*DIMENSIONS, *SIZES, "nodelist")

# The schema as migration 12 creates it (store/migrations.py); frozen: a change is a new migration.
SCHEMA = """
CREATE TABLE usage_monthly_by (
    cluster TEXT NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL, kind TEXT NOT NULL, month INTEGER NOT NULL,
    key TEXT NOT NULL,
    jobs INTEGER NOT NULL, cpu_hours REAL NOT NULL, gpu_hours REAL NOT NULL,
    waited INTEGER NOT NULL, wait_s REAL NOT NULL, wait_max REAL NOT NULL,
    ran INTEGER NOT NULL, duration_s REAL NOT NULL,
    PRIMARY KEY (cluster, dim, value, kind, month, key)
) WITHOUT ROWID;
CREATE INDEX usage_monthly_by_month ON usage_monthly_by (cluster, month);
CREATE INDEX usage_jobs_user ON usage_jobs (cluster, user_name, submit);
"""

# (dim, kind) pairs kept: every dimension by every other, and the sizes by the cluster and every dimension
PAIRS: tuple[tuple[str, str], ...] = (
    *((d, k) for d in DIMENSIONS for k in DIMENSIONS if k != d),
    *(("", k) for k in (*SIZES, "nodelist")),
    *((d, k) for d in DIMENSIONS for k in SIZES),
    *((d, "nodelist") for d in DIMENSIONS if d != "user_name"),
)

_WAIT = "max(start - submit, 0)"
_DURATION = 'max("end" - start, 0)'
# per job (from usage_jobs), as the sums a rollup keeps
_JOB_FIGURES = f"""count(*) AS jobs, sum(cpu_hours) AS cpu_hours, sum(gpu_hours) AS gpu_hours,
    count(start) AS waited, coalesce(sum({_WAIT}), 0) AS wait_s, coalesce(max({_WAIT}), 0) AS wait_max,
    count(CASE WHEN start IS NOT NULL AND "end" IS NOT NULL THEN 1 END) AS ran,
    coalesce(sum({_DURATION}), 0) AS duration_s"""
# over rows that already hold those sums
_SUMS = """sum(jobs), sum(cpu_hours), sum(gpu_hours), sum(waited), sum(wait_s), max(wait_max), sum(ran),
    sum(duration_s)"""
_GROUPED = "partition, account, user_name, qos, state, cpus, gpus, nodes, nodelist"

Row = tuple[Any, ...]  # (key, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s)


def _key(kind: str) -> str:
    return f"CAST({kind} AS TEXT)" if kind in SIZES else kind


def recompute_month(db: sqlite3.Connection, cluster: str, first: int, end: int) -> None:
    """The rows of the month [first, end) (days since the epoch) of ``cluster`` from its jobs; the caller
    holds the transaction. The month's jobs are grouped once into a temporary table, then broken down."""
    _delete_month(db, cluster, first)
    db.execute(f"CREATE TEMP TABLE IF NOT EXISTS usage_month_jobs AS SELECT {_GROUPED}, 0 AS jobs, "
               "0.0 AS cpu_hours, 0.0 AS gpu_hours, 0 AS waited, 0.0 AS wait_s, 0.0 AS wait_max, 0 AS ran, "
               "0.0 AS duration_s FROM usage_jobs WHERE 0")  # fmt: skip
    db.execute("DELETE FROM temp.usage_month_jobs")
    db.execute(
        f"""INSERT INTO temp.usage_month_jobs SELECT {_GROUPED}, {_JOB_FIGURES} FROM usage_jobs
            WHERE cluster = ? AND submit >= ? AND submit < ? GROUP BY {_GROUPED}""",
        (cluster, first * DAY, end * DAY),
    )
    for dim, kind in PAIRS:
        value = dim or "''"
        db.execute(
            f"""INSERT INTO usage_monthly_by
                SELECT ?, ?, {value}, ?, ?, {_key(kind)}, {_SUMS} FROM temp.usage_month_jobs
                GROUP BY {value}, {_key(kind)}""",
            (cluster, dim, kind, first),
        )


def _delete_month(db: sqlite3.Connection, cluster: str, first: int) -> None:
    db.execute("DELETE FROM usage_monthly_by WHERE cluster = ? AND month = ?", (cluster, first))


def rebuild(db: sqlite3.Connection, months: Iterable[tuple[str, int, int]]) -> None:
    """Every given (cluster, first day, end day) month anew (a bulk load, the migration)."""
    for cluster, first, end in months:
        recompute_month(db, cluster, first, end)


def single_filter(f: UsageFilter) -> tuple[str, tuple[str, ...]] | None:
    """(dimension, values) of a question filtered on at most one dimension (("", ("",)) for none), else
    None: the questions this table answers."""
    filtered = [(d, v) for d, v in f.dims().items() if v]
    if f.cluster is None or len(filtered) > 1:
        return None
    return filtered[0] if filtered else ("", ("",))


def answers(f: UsageFilter, kind: str) -> bool:
    """Whether ``breakdown(f, kind)`` can read this table (else it reads the jobs)."""
    single = single_filter(f)
    return single is not None and (single[0], kind) in PAIRS


def window(f: UsageFilter) -> tuple[int, int]:
    """(first, last) day of ``f``'s window; an open side is the beginning or the far end of time."""
    lo = f.since_day if f.since_day is not None else 0
    hi = f.until_day if f.until_day is not None else 1_000_000
    return lo, hi


def _jobs_where(f: UsageFilter, lo: int, hi: int) -> tuple[str, list[Any]]:
    conds = ["submit >= ?", "submit < ?"]
    args: list[Any] = [lo * DAY, (hi + 1) * DAY]
    if f.cluster is not None:
        conds.insert(0, "cluster = ?")
        args.insert(0, f.cluster)
    for column, values in f.dims().items():
        if values:
            conds.append(f"{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
    return " WHERE " + " AND ".join(conds), args


def breakdown(
    db: sqlite3.Connection, f: UsageFilter, kind: str, spans: list[tuple[str, int, int]]
) -> list[Row]:
    """The filtered jobs' figures per value of ``kind`` (a dimension, a size, a node list), by key.

    ``spans`` are store/usage.py's (grain, first, last) pieces of the window: "m" whole months (read
    here when ``answers``), "d" runs of days (their jobs grouped on the spot)."""
    if kind not in KINDS:
        raise ValueError(f"cannot break down by {kind!r}")
    parts: list[str] = []
    args: list[Any] = []
    single = single_filter(f) if answers(f, kind) else None
    if single is None:
        lo, hi = window(f)
        spans = [("d", lo, hi)]
    for grain, a, b in spans:
        if grain == "m" and single is not None:
            dim, values = single
            parts.append(
                f"""SELECT key, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s
                    FROM usage_monthly_by WHERE cluster = ? AND dim = ? AND kind = ?
                    AND value IN ({", ".join("?" * len(values))}) AND month >= ? AND month <= ?"""
            )
            args += [f.cluster, dim, kind, *values, a, b]
        else:
            where, more = _jobs_where(f, a, b)
            index = " INDEXED BY usage_jobs_user" if f.dims()["user_name"] and f.cluster else ""
            parts.append(
                f"SELECT {_key(kind)} AS key, {_JOB_FIGURES} FROM usage_jobs{index}{where} GROUP BY key"
            )
            args += more
    if not parts:
        return []
    return db.execute(
        f"SELECT key, {_SUMS} FROM ({' UNION ALL '.join(parts)}) GROUP BY key ORDER BY key", args
    ).fetchall()


def user_period_pairs(
    f: UsageFilter, spans: list[tuple[str, int, int]], period_key: str | None
) -> tuple[str, list[Any]]:
    """SQL of the distinct (period ``k``, user ``u``) pairs of the filtered jobs (``period_key``:
    store/usage.py's SQL of a day number ``day``; None: the single period ""), for a question filtered on
    one dimension: whole months from this table, the other days from the daily rollup."""
    single = single_filter(f)
    assert single is not None
    dim, values = single
    key = period_key or "''"
    month_key = re.sub(r"\bday\b", "month", key)  # the same period of a month's first day
    parts: list[str] = []
    args: list[Any] = []
    for grain, a, b in spans:
        if grain == "m" and dim:
            parts.append(
                f"""SELECT DISTINCT {month_key} AS k, key AS u FROM usage_monthly_by
                    WHERE cluster = ? AND dim = ? AND kind = 'user_name'
                    AND value IN ({", ".join("?" * len(values))}) AND month >= ? AND month <= ?"""
            )
            args += [f.cluster, dim, *values, a, b]
        else:
            cond = f" AND {dim} IN ({', '.join('?' * len(values))})" if dim else ""
            parts.append(
                f"""SELECT DISTINCT {key} AS k, user_name AS u FROM usage_daily
                    WHERE cluster = ? AND day >= ? AND day <= ?{cond}"""
            )
            args += [f.cluster, a, b, *(values if dim else ())]
    if not parts:
        return "SELECT NULL AS k, NULL AS u WHERE 0", []
    return " UNION ALL ".join(parts), args


def user_parts(f: UsageFilter, spans: list[tuple[str, int, int]]) -> list[tuple[str, str, list[Any]]]:
    """(grain, SQL, args) pieces of rows (day, value: the user, jobs, cpu_hours, gpu_hours, waited,
    wait_s, wait_max, ran, duration_s) of the filtered jobs, for a question filtered on one dimension
    other than the user: "m" rows (``day`` the first day of a whole month) from this table, "d" rows (a
    day each) from the daily rollup."""
    single = single_filter(f)
    assert single is not None and single[0]
    dim, values = single
    figures = "jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s"
    marks = ", ".join("?" * len(values))
    parts: list[tuple[str, str, list[Any]]] = []
    for grain, a, b in spans:
        if grain == "m":
            sql = f"""SELECT month AS day, key AS value, {figures} FROM usage_monthly_by
                      WHERE cluster = ? AND dim = ? AND kind = 'user_name' AND value IN ({marks})
                      AND month >= ? AND month <= ?"""
            parts.append((grain, sql, [f.cluster, dim, *values, a, b]))
        else:
            sql = f"""SELECT day, user_name AS value, {figures} FROM usage_daily
                      WHERE cluster = ? AND day >= ? AND day <= ? AND {dim} IN ({marks})"""
            parts.append((grain, sql, [f.cluster, a, b, *values]))
    return parts


def distinct_users(
    db: sqlite3.Connection, f: UsageFilter, spans: list[tuple[str, int, int]], period_key: str | None
) -> dict[str, int]:
    """The distinct users of the filtered jobs per period (None: one total under the key "")."""
    source, args = user_period_pairs(f, spans, period_key)
    return dict(db.execute(f"SELECT k, count(DISTINCT u) FROM ({source}) GROUP BY k", args).fetchall())
