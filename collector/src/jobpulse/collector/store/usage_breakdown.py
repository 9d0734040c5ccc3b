"""Usage broken down one more way: what filtered dashboard questions and the per-job charts read (issue 18).

Why: a dashboard question filtered on one dimension (a partition, an account, a QOS, a state, a user, or a
user's own view, which is a filter on the user) used to read ``usage_daily`` over its whole window: on a
big history that rollup is about as large as the jobs themselves and carries 16 bin counters a row, so
one partition's 5 years took minutes. And the per-job charts (CPUs, GPUs, nodes per job; usage per node)
need figures no rollup kept.

``usage_breakdown`` holds, per (cluster, grain, filtered dimension and value, kind, day), the figures of
the jobs per ``key``: ``kind`` a second dimension (``key`` its value), or a size (``kind`` cpus, gpus,
nodes: ``key`` the count), or ``nodelist`` (``key`` the job's node list as sacct printed it).

- grain "m" (``day`` the month's first day): every dimension by every other but the QOS; the sizes for
  the whole cluster (``dim`` "") and per value of every dimension; node lists for the whole cluster and
  per partition (per user they would make the table larger than the jobs; per account, QOS or state they
  were a third of its rows, for a chart rarely asked so: those questions read the jobs).
- grain "d" (``day`` the day): the sizes and node lists of the whole cluster, the sizes per partition,
  account, QOS and state, and the node lists per partition (``DAY_PAIRS``), so the page's usual question
  (6 weeks, with or without one such filter) never reads the jobs; grain "y" (``day`` January 1st): the
  whole cluster's sizes and node lists per year, summed from its months, so a question over years reads
  a row per year and key.

A question reads a month's rows for every whole month of its window and a day's rows (or, where no day
rows are kept, its jobs grouped on the spot in one scan of ``usage_jobs``, by (cluster, submit) or by
the ``usage_jobs_user`` index for a user's own) for the days at its edges, so it reads a few thousand
rows whatever its span. A question filtered on two dimensions or more is not answered here (``single_filter``
says so) and reads the daily rollup or the jobs as before.

A write recomputes the days and months it touched, whole, in its own transaction (store/usage.py
``recompute_days``), like the other rollups: a day from its jobs, a month from its days' rows and the
daily rollup (only the users' sizes from its jobs).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from jobpulse.collector.domain.usage import UsageFilter

DAY = 86400
DIMENSIONS = ("partition", "account", "user_name", "qos", "state")
SHAPES = ("cpus", "gpus", "nodes", "nodelist")
KINDS = (*DIMENSIONS, *SHAPES)

# The schema as migration 12 creates it (store/migrations.py); frozen: a change is a new migration.
SCHEMA = """
CREATE TABLE usage_breakdown (
    cluster TEXT NOT NULL, grain TEXT NOT NULL, dim TEXT NOT NULL, value TEXT NOT NULL, kind TEXT NOT NULL,
    day INTEGER NOT NULL, key TEXT NOT NULL,
    jobs INTEGER NOT NULL, cpu_hours REAL NOT NULL, gpu_hours REAL NOT NULL,
    waited INTEGER NOT NULL, wait_s REAL NOT NULL, wait_max REAL NOT NULL,
    ran INTEGER NOT NULL, duration_s REAL NOT NULL,
    PRIMARY KEY (cluster, grain, dim, value, kind, day, key)
) WITHOUT ROWID;
CREATE INDEX usage_breakdown_day ON usage_breakdown (cluster, day, grain);
CREATE INDEX usage_jobs_user ON usage_jobs (cluster, user_name, submit);
CREATE INDEX usage_breakdown_users ON usage_breakdown
    (cluster, dim, value, key, day, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s)
    WHERE grain = 'm' AND kind = 'user_name';
CREATE INDEX usage_marginal_users ON usage_marginal
    (cluster, value, day, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s)
    WHERE grain = 'm' AND dim = 'user_name';
"""

# (dim, kind) pairs kept per month
# (the QOS is never a breakdown the dashboard asks for under a filter, and node lists per account, QOS or
# state made a third of the rows for a rarely asked chart: those questions read the jobs)
SIZES = ("cpus", "gpus", "nodes")
MONTH_PAIRS: tuple[tuple[str, str], ...] = (
    *((d, k) for d in DIMENSIONS for k in DIMENSIONS if k not in (d, "qos")),
    *(("", k) for k in SHAPES),
    *((d, k) for d in DIMENSIONS for k in SIZES),
    ("partition", "nodelist"),
)
# per day: what a filtered question cannot take from the daily rollup (which keeps every dimension but
# no sizes or node lists), except per user (a user's jobs are read through their own index): the page's
# default window (6 weeks) rarely holds a whole month, and reading its jobs for the sizes was most of a
# filtered question's time
DAY_PAIRS: tuple[tuple[str, str], ...] = (
    *(("", k) for k in SHAPES),
    *((d, k) for d in DIMENSIONS if d != "user_name" for k in SIZES),
    ("partition", "nodelist"),
)
YEAR_PAIRS: tuple[tuple[str, str], ...] = tuple(("", k) for k in SHAPES)  # summed from the months
# how a month's rows are made: summed from its days' rows where days keep the pair; a pair of two
# dimensions from the daily rollup; the users' sizes from the month's jobs
_MONTH_FROM_DAYS = tuple(p for p in MONTH_PAIRS if p in DAY_PAIRS)
_MONTH_FROM_DAILY = tuple((d, k) for d, k in MONTH_PAIRS if d in DIMENSIONS and k in DIMENSIONS)
_MONTH_FROM_JOBS = tuple(p for p in MONTH_PAIRS if p not in _MONTH_FROM_DAYS + _MONTH_FROM_DAILY)

_WAIT = "max(start - submit, 0)"
_DURATION = 'max("end" - start, 0)'
# per job (from usage_jobs), as the sums a rollup keeps
_JOB_FIGURES = f"""count(*) AS jobs, sum(cpu_hours) AS cpu_hours, sum(gpu_hours) AS gpu_hours,
    count(start) AS waited, coalesce(sum({_WAIT}), 0) AS wait_s, coalesce(max({_WAIT}), 0) AS wait_max,
    count(CASE WHEN start IS NOT NULL AND "end" IS NOT NULL THEN 1 END) AS ran,
    coalesce(sum({_DURATION}), 0) AS duration_s"""
FIGURES = "jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s"
# over rows that already hold those sums
_SUMS = """sum(jobs), sum(cpu_hours), sum(gpu_hours), sum(waited), sum(wait_s), max(wait_max), sum(ran),
    sum(duration_s)"""
_GROUPED = "partition, account, user_name, qos, state, cpus, gpus, nodes, nodelist"

_NAMED_SUMS = """sum(jobs) AS jobs, sum(cpu_hours) AS cpu_hours, sum(gpu_hours) AS gpu_hours,
    sum(waited) AS waited, sum(wait_s) AS wait_s, max(wait_max) AS wait_max, sum(ran) AS ran,
    sum(duration_s) AS duration_s"""

Row = tuple[Any, ...]  # (key, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s)


def _key(kind: str) -> str:
    return f"CAST({kind} AS TEXT)" if kind in SHAPES else kind


def _fill(
    db: sqlite3.Connection,
    cluster: str,
    grain: str,
    first: int,
    end: int,
    pairs: Sequence[tuple[str, str]],
    grouped: str = _GROUPED,
) -> None:
    """The ``grain`` rows (``day`` = ``first``) of ``pairs`` for the days [first, end) of ``cluster``
    from its jobs; the caller holds the transaction and has deleted the old rows. The jobs are grouped once
    (by ``grouped``, the columns the pairs need) into a temporary table, then broken down."""
    db.execute("DROP TABLE IF EXISTS temp.usage_span_jobs")
    db.execute(
        f"""CREATE TEMP TABLE usage_span_jobs AS SELECT {grouped}, {_JOB_FIGURES} FROM usage_jobs
            WHERE cluster = ? AND submit >= ? AND submit < ? GROUP BY {grouped}""",
        (cluster, first * DAY, end * DAY),
    )
    for dim, kind in pairs:
        value = dim or "''"
        db.execute(
            f"""INSERT INTO usage_breakdown
                SELECT ?, ?, ?, {value}, ?, ?, {_key(kind)}, {_SUMS} FROM temp.usage_span_jobs
                GROUP BY {value}, {_key(kind)}""",
            (cluster, grain, dim, kind, first),
        )


def _delete(db: sqlite3.Connection, cluster: str, grain: str, day: int) -> None:
    db.execute(
        "DELETE FROM usage_breakdown WHERE cluster = ? AND day = ? AND grain = ?", (cluster, day, grain)
    )


def recompute_day(db: sqlite3.Connection, cluster: str, day: int) -> None:
    _delete(db, cluster, "d", day)
    _fill(db, cluster, "d", day, day + 1, DAY_PAIRS)


def recompute_month(db: sqlite3.Connection, cluster: str, first: int, end: int) -> None:
    """The month [first, end) (days since the epoch) of ``cluster``, and the rows of its year; its days'
    rows (``recompute_day``) and its daily rollup must be up to date.

    Why not all from the month's jobs: grouping a month of a big cluster's jobs (170,000 at 2 million a
    year) 36 ways took 5 s a month touched, for every post that changed a job in it. Summing the days'
    rows and the daily rollup reads a few times fewer rows; only the users' sizes need the jobs."""
    _delete(db, cluster, "m", first)
    _month(db, cluster, first, end)
    _year(db, cluster, date.fromordinal(_EPOCH + first).year)


def _month(db: sqlite3.Connection, cluster: str, first: int, end: int) -> None:
    """The "m" rows of the month [first, end) of ``cluster`` (the old ones deleted)."""
    marks = ", ".join("(?, ?)" for _ in _MONTH_FROM_DAYS)
    db.execute(
        f"""INSERT INTO usage_breakdown
            SELECT cluster, 'm', dim, value, kind, ?, key, {_SUMS} FROM usage_breakdown
            WHERE cluster = ? AND day >= ? AND day < ? AND grain = 'd' AND (dim, kind) IN (VALUES {marks})
            GROUP BY dim, value, kind, key""",
        (first, cluster, first, end, *(x for pair in _MONTH_FROM_DAYS for x in pair)),
    )
    db.execute("DROP TABLE IF EXISTS temp.usage_span_daily")
    db.execute(
        f"""CREATE TEMP TABLE usage_span_daily AS SELECT {", ".join(DIMENSIONS)}, {_NAMED_SUMS}
            FROM usage_daily WHERE cluster = ? AND day >= ? AND day < ? GROUP BY {", ".join(DIMENSIONS)}""",
        (cluster, first, end),
    )
    for dim, kind in _MONTH_FROM_DAILY:
        db.execute(
            f"""INSERT INTO usage_breakdown
                SELECT ?, 'm', ?, {dim}, ?, ?, {kind}, {_SUMS} FROM temp.usage_span_daily
                GROUP BY {dim}, {kind}""",
            (cluster, dim, kind, first),
        )
    _fill(db, cluster, "m", first, end, _MONTH_FROM_JOBS, "user_name, cpus, gpus, nodes")


def _year(db: sqlite3.Connection, cluster: str, year: int) -> None:
    """The "y" rows of ``year`` from its months' rows (a dozen months of the whole cluster's sizes and
    node lists: cheap enough for every write)."""
    first = date(year, 1, 1).toordinal() - _EPOCH
    last = date(year, 12, 31).toordinal() - _EPOCH
    _delete(db, cluster, "y", first)
    kinds = [k for _, k in YEAR_PAIRS]
    db.execute(
        f"""INSERT INTO usage_breakdown
            SELECT cluster, 'y', '', '', kind, ?, key, {_SUMS} FROM usage_breakdown
            WHERE cluster = ? AND grain = 'm' AND dim = '' AND value = '' AND kind IN ({", ".join("?" * len(kinds))})
            AND day >= ? AND day <= ? GROUP BY kind, key""",
        (first, cluster, *kinds, first, last),
    )


def rebuild(db: sqlite3.Connection, months: Iterable[tuple[str, int, int]]) -> None:
    """Every day's rows from the jobs, then every given (cluster, first day, end day) month's and their
    years' (a bulk load: the migrations, ``rebuild_rollup``); the daily rollup must be up to date."""
    db.execute("DELETE FROM usage_breakdown")
    fill_days(db)
    years = set()
    for cluster, first, end in months:
        _month(db, cluster, first, end)
        years.add((cluster, date.fromordinal(_EPOCH + first).year))
    for cluster, year in sorted(years):
        _year(db, cluster, year)


def fill_days(db: sqlite3.Connection, pairs: Sequence[tuple[str, str]] = DAY_PAIRS) -> None:
    """The "d" rows of ``pairs`` for every day with jobs, in one pass over the jobs per pair (a bulk
    load: migration 13 adds the filtered sizes and node lists to the days of a history)."""
    for dim, kind in pairs:
        value = dim or "''"
        db.execute(
            f"""INSERT INTO usage_breakdown
                SELECT cluster, 'd', ?, {value}, ?, submit / {DAY}, {_key(kind)}, {_JOB_FIGURES} FROM usage_jobs
                GROUP BY cluster, submit / {DAY}, {value}, {_key(kind)}""",
            (dim, kind),
        )


def _last_day(grain: str, day: int) -> int:
    """The last day a span's piece covers: ``day`` itself, or for "m" ("y") the last day of the month
    (year) it starts."""
    first = date.fromordinal(_EPOCH + day)
    if grain == "y":
        return date(first.year, 12, 31).toordinal() - _EPOCH
    if grain != "m":
        return day
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1).toordinal() - _EPOCH - 1


_EPOCH = date(1970, 1, 1).toordinal()


def single_filter(f: UsageFilter) -> tuple[str, tuple[str, ...]] | None:
    """(dimension, values) of a question filtered on at most one dimension (("", ("",)) for none), else
    None: the questions this table answers."""
    filtered = [(d, v) for d, v in f.dims().items() if v]
    if f.cluster is None or len(filtered) > 1:
        return None
    return filtered[0] if filtered else ("", ("",))


def window(f: UsageFilter) -> tuple[int, int]:
    """(first, last) day of ``f``'s window; an open side is the beginning or the far end of time."""
    lo = f.since_day if f.since_day is not None else 0
    hi = f.until_day if f.until_day is not None else 1_000_000
    return lo, hi


def _span_where(f: UsageFilter, lo: int, hi: int, daily: bool = False) -> tuple[str, list[Any]]:
    """The WHERE clause of ``f`` over the days [lo, hi]: on the jobs' submit time, or (``daily``) on the
    daily rollup's day."""
    conds = ["day >= ?", "day <= ?"] if daily else ["submit >= ?", "submit < ?"]
    args: list[Any] = [lo, hi] if daily else [lo * DAY, (hi + 1) * DAY]
    if f.cluster is not None:
        conds.insert(0, "cluster = ?")
        args.insert(0, f.cluster)
    for column, values in f.dims().items():
        if values:
            conds.append(f"{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
    return " WHERE " + " AND ".join(conds), args


def breakdown(
    db: sqlite3.Connection, f: UsageFilter, kinds: Sequence[str], spans: list[tuple[str, int, int]]
) -> dict[str, list[Row]]:
    """Per kind of ``kinds`` (dimensions, sizes, node lists), the filtered jobs' figures per key, by key.

    ``spans`` are store/usage.py's (grain, first, last) pieces of the window: whole months ("m") and days
    ("d"). Each piece and kind is read from this table where it keeps them for ``f``'s one filter, else
    a dimension from the daily rollup and a size or node list from the jobs: one scan of the piece's
    rows grouped by every such kind at once."""
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"cannot break down by {kind!r}")
    single = single_filter(f)
    if single is None:
        spans = [("d", *window(f))]
    ctes: list[str] = []
    cte_args: list[Any] = []
    parts: list[str] = []
    part_args: list[Any] = []
    for grain, a, b in spans:
        pairs = {"y": YEAR_PAIRS, "m": MONTH_PAIRS}.get(grain, DAY_PAIRS)
        kept = [k for k in kinds if single is not None and (single[0], k) in pairs]
        if kept and single is not None:
            dim, values = single
            parts.append(
                f"""SELECT kind, key, {FIGURES} FROM usage_breakdown
                    WHERE cluster = ? AND grain = ? AND dim = ? AND value IN ({", ".join("?" * len(values))})
                    AND kind IN ({", ".join("?" * len(kept))}) AND day >= ? AND day <= ?"""
            )
            part_args += [f.cluster, grain, dim, *values, *kept, a, b]
        rest = [k for k in kinds if k not in kept and k not in DIMENSIONS]
        daily = [k for k in kinds if k not in kept and k in DIMENSIONS]
        if daily:
            # the piece's daily rollup (it keeps every dimension: a row per day and combination of them,
            # a few times fewer rows than jobs, and no look-up of each job's row through an index)
            where, more = _span_where(f, a, _last_day(grain, b), daily=True)
            name, columns = f"j{len(ctes)}", ", ".join(daily)
            ctes.append(
                f"{name} AS (SELECT {columns}, {_NAMED_SUMS} FROM usage_daily{where} GROUP BY {columns})"
            )
            cte_args += more
            parts += [f"SELECT '{kind}' AS kind, {kind} AS key, {FIGURES} FROM {name}" for kind in daily]
        if rest:
            # the piece's jobs, grouped once by every kind not kept, then broken down per kind
            where, more = _span_where(f, a, _last_day(grain, b))
            index = " INDEXED BY usage_jobs_user" if f.dims()["user_name"] and f.cluster else ""
            name, columns = f"j{len(ctes)}", ", ".join(rest)
            ctes.append(
                f"{name} AS (SELECT {columns}, {_JOB_FIGURES} FROM usage_jobs{index}{where} GROUP BY {columns})"
            )
            cte_args += more
            parts += [f"SELECT '{kind}' AS kind, {_key(kind)} AS key, {FIGURES} FROM {name}" for kind in rest]
    out: dict[str, list[Row]] = {k: [] for k in kinds}
    if not parts:
        return out
    sql = (
        "WITH " + ", ".join(ctes) + " " if ctes else ""
    ) + f"SELECT kind, key, {_SUMS} FROM ({' UNION ALL '.join(parts)}) GROUP BY kind, key ORDER BY kind, key"
    for kind, *row in db.execute(sql, [*cte_args, *part_args]):
        out[kind].append(tuple(row))
    return out


def user_parts(f: UsageFilter, spans: list[tuple[str, int, int]]) -> list[tuple[str, str, list[Any]]]:
    """(grain, SQL, args) pieces of rows (day, value: the user, jobs, cpu_hours, gpu_hours, waited,
    wait_s, wait_max, ran, duration_s) of the filtered jobs, for a question filtered on one dimension
    other than the user: "m" rows (``day`` the first day of a whole month) from this table, "d" rows (a
    day each) from the daily rollup."""
    single = single_filter(f)
    assert single is not None and single[0]
    dim, values = single
    marks = ", ".join("?" * len(values))
    parts: list[tuple[str, str, list[Any]]] = []
    for grain, a, b in spans:
        if grain == "m":
            sql = f"""SELECT day, key AS value, {FIGURES} FROM usage_breakdown
                      WHERE cluster = ? AND grain = 'm' AND dim = ? AND value IN ({marks}) AND kind = 'user_name'
                      AND day >= ? AND day <= ?"""
            parts.append((grain, sql, [f.cluster, dim, *values, a, b]))
        else:
            sql = f"""SELECT day, user_name AS value, {FIGURES} FROM usage_daily
                      WHERE cluster = ? AND day >= ? AND day <= ? AND {dim} IN ({marks})"""
            parts.append((grain, sql, [f.cluster, a, b, *values]))
    return parts


def distinct_users(
    db: sqlite3.Connection, f: UsageFilter, spans: list[tuple[str, int, int]], period_key: str | None
) -> dict[str, int]:
    """The distinct users of the filtered jobs (one dimension, not the user, filtered) per period
    (``period_key``: store/usage.py's SQL of a day number ``day``; None: one total under the key "")."""
    parts = user_parts(f, spans)
    if not parts:
        return {}
    key = period_key or "''"
    union = " UNION ALL ".join(f"SELECT {key} AS k, value FROM ({sql})" for _, sql, _ in parts)
    args = [a for _, _, part in parts for a in part]
    return dict(db.execute(f"SELECT k, count(DISTINCT value) FROM ({union}) GROUP BY k", args).fetchall())
