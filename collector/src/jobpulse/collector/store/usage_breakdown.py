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
- grain "d" (``day`` the day): the sizes and node lists of the whole cluster only, so the page's usual
  question (6 weeks, no filter) never reads the jobs; grain "y" (``day`` January 1st): the same per year,
  summed from its months, so a question over years reads a row per year and key.

A question reads a month's rows for every whole month of its window and a day's rows (or, where no day
rows are kept, its jobs grouped on the spot in one scan of ``usage_jobs``, by (cluster, submit) or by
the ``usage_jobs_user`` index for a user's own) for the days at its edges, so it reads a few thousand
rows whatever its span. A question filtered on two dimensions or more is not answered here (``single_filter``
says so) and reads the daily rollup or the jobs as before.

A write recomputes the days and months it touched, whole, in its own transaction (store/usage.py
``recompute_days``), like the other rollups.
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

# (dim, kind) pairs kept per month; per day only ("", shape)
# (the QOS is never a breakdown the dashboard asks for under a filter, and node lists per account, QOS or
# state made a third of the rows for a rarely asked chart: those questions read the jobs)
MONTH_PAIRS: tuple[tuple[str, str], ...] = (
    *((d, k) for d in DIMENSIONS for k in DIMENSIONS if k not in (d, "qos")),
    *(("", k) for k in SHAPES),
    *((d, k) for d in DIMENSIONS for k in ("cpus", "gpus", "nodes")),
    ("partition", "nodelist"),
)
DAY_PAIRS: tuple[tuple[str, str], ...] = tuple(("", k) for k in SHAPES)
YEAR_PAIRS = DAY_PAIRS  # per year, summed from the months: the whole cluster's sizes and node lists

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

Row = tuple[Any, ...]  # (key, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s)


def _key(kind: str) -> str:
    return f"CAST({kind} AS TEXT)" if kind in SHAPES else kind


def _fill(
    db: sqlite3.Connection, cluster: str, grain: str, first: int, end: int, pairs: Sequence[tuple[str, str]]
) -> None:
    """The ``grain`` rows (``day`` = ``first``) of the days [first, end) of ``cluster`` from its jobs; the
    caller holds the transaction. The jobs are grouped once into a temporary table, then broken down."""
    db.execute(
        "DELETE FROM usage_breakdown WHERE cluster = ? AND day = ? AND grain = ?", (cluster, first, grain)
    )
    db.execute(f"CREATE TEMP TABLE IF NOT EXISTS usage_span_jobs AS SELECT {_GROUPED}, {_JOB_FIGURES}"
               " FROM usage_jobs WHERE 0 GROUP BY 1")  # fmt: skip
    db.execute("DELETE FROM temp.usage_span_jobs")
    db.execute(
        f"""INSERT INTO temp.usage_span_jobs SELECT {_GROUPED}, {_JOB_FIGURES} FROM usage_jobs
            WHERE cluster = ? AND submit >= ? AND submit < ? GROUP BY {_GROUPED}""",
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


def recompute_day(db: sqlite3.Connection, cluster: str, day: int) -> None:
    _fill(db, cluster, "d", day, day + 1, DAY_PAIRS)


def recompute_month(db: sqlite3.Connection, cluster: str, first: int, end: int) -> None:
    """The month [first, end) (days since the epoch) of ``cluster``, and the rows of its year."""
    _fill(db, cluster, "m", first, end, MONTH_PAIRS)
    _year(db, cluster, date.fromordinal(_EPOCH + first).year)


def _year(db: sqlite3.Connection, cluster: str, year: int) -> None:
    """The "y" rows of ``year`` from its months' rows (a dozen months of the whole cluster's sizes and
    node lists: cheap enough for every write)."""
    first = date(year, 1, 1).toordinal() - _EPOCH
    last = date(year, 12, 31).toordinal() - _EPOCH
    db.execute("DELETE FROM usage_breakdown WHERE cluster = ? AND day = ? AND grain = 'y'", (cluster, first))
    kinds = [k for _, k in YEAR_PAIRS]
    db.execute(
        f"""INSERT INTO usage_breakdown
            SELECT cluster, 'y', '', '', kind, ?, key, {_SUMS} FROM usage_breakdown
            WHERE cluster = ? AND grain = 'm' AND dim = '' AND value = '' AND kind IN ({", ".join("?" * len(kinds))})
            AND day >= ? AND day <= ? GROUP BY kind, key""",
        (first, cluster, *kinds, first, last),
    )


def rebuild(db: sqlite3.Connection, months: Iterable[tuple[str, int, int]]) -> None:
    """Every given (cluster, first day, end day) month anew, and its days (a bulk load, the migration)."""
    years = set()
    for cluster, first, end in months:
        _fill(db, cluster, "m", first, end, MONTH_PAIRS)
        years.add((cluster, date.fromordinal(_EPOCH + first).year))
    for cluster, year in sorted(years):
        _year(db, cluster, year)
    db.execute("DELETE FROM usage_breakdown WHERE grain = 'd'")
    for _, kind in DAY_PAIRS:
        db.execute(
            f"""INSERT INTO usage_breakdown
                SELECT cluster, 'd', '', '', ?, submit / {DAY}, {_key(kind)}, {_JOB_FIGURES} FROM usage_jobs
                GROUP BY cluster, submit / {DAY}, {_key(kind)}""",
            (kind,),
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
    db: sqlite3.Connection, f: UsageFilter, kinds: Sequence[str], spans: list[tuple[str, int, int]]
) -> dict[str, list[Row]]:
    """Per kind of ``kinds`` (dimensions, sizes, node lists), the filtered jobs' figures per key, by key.

    ``spans`` are store/usage.py's (grain, first, last) pieces of the window: whole months ("m") and days
    ("d"). Each piece and kind is read from this table where it keeps them for ``f``'s one filter, else
    from the jobs: one scan of the piece's jobs grouped by every such kind at once."""
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
        rest = [k for k in kinds if k not in kept]
        if rest:
            # the piece's jobs, grouped once by every kind not kept, then broken down per kind
            where, more = _jobs_where(f, a, _last_day(grain, b))
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
