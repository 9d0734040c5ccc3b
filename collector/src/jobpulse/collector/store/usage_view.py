"""The SQL of the usage view's two-way questions (domain/usage_view.py): per period and per user or
account from the daily rollup, and per user or account from the monitored jobs' summaries.

The filter is store/usage.py's own ``_where``, so a breakdown and the usage-history questions read the
same jobs for the same filter (a user's questions narrowed to their jobs the same way). A breakdown reads
``usage_daily`` (the per-dimension margins hold one dimension at a time, and this asks for two).
"""

from __future__ import annotations

import sqlite3

from jobpulse.collector.domain.usage import UsageFilter
from jobpulse.collector.domain.usage_view import (
    BREAKDOWN_COLUMNS,
    BREAKDOWN_PERIODS,
    KeyEfficiency,
    PeriodKeyUsage,
)
from jobpulse.collector.store.usage import _where

# the first day of a day's period, in days since the epoch: weeks start on Monday (1970-01-01 was a
# Thursday, so day 4 was the first Monday), months on the 1st
_PERIOD_START = {
    "week": "(day - ((day + 3) % 7))",
    "month": "CAST(julianday(date(day * 86400, 'unixepoch', 'start of month')) - 2440587.5 AS INTEGER)",
}


def _column(by: str) -> str:
    if by not in BREAKDOWN_COLUMNS:
        raise ValueError(f"cannot break usage down by {by!r}")
    return by


def per_period_and(db: sqlite3.Connection, f: UsageFilter, period: str, by: str) -> list[PeriodKeyUsage]:
    """The filtered usage per (period, value of ``by``), ordered by period then value; periods and values
    without jobs are left out."""
    if period not in BREAKDOWN_PERIODS:
        raise ValueError(f"cannot group usage by {period!r}")
    column = _column(by)
    where, args = _where(f)
    rows = db.execute(
        f"""SELECT {_PERIOD_START[period]} AS p, {column} AS k, sum(jobs), sum(cpu_hours), sum(gpu_hours)
            FROM usage_daily{where} GROUP BY p, k ORDER BY p, k""",
        args,
    ).fetchall()
    return [PeriodKeyUsage(int(r[0]), str(r[1]), int(r[2]), float(r[3]), float(r[4])) for r in rows]


def efficiency_per(db: sqlite3.Connection, f: UsageFilter, by: str) -> list[KeyEfficiency]:
    """Per value of ``by``, the summaries of its monitored jobs among the filtered ones (values without
    a monitored job are left out).

    CPU: used of allocated core-seconds over all its jobs (each job's efficiency weighted by its
    allocated core-seconds, or by its CPU-hours where a summary lacks them), so a big job counts for
    more than a short test and a job agents saw without an allocation still counts. Memory: the job's
    highest node peak of its limit (or of what it requested where no limit was read), the figure the job
    page shows, as a plain mean over the jobs."""
    column = _column(by)
    where, args = _where(f, day_col="u.submit", prefix="u.")
    cpu = "json_extract(s.summary, '$.cpu_efficiency')"
    weight = "coalesce(json_extract(s.summary, '$.alloc_core_seconds'), u.cpu_hours * 3600)"
    peak = "json_extract(s.summary, '$.mem_peak_bytes')"
    given = "coalesce(json_extract(s.summary, '$.mem_limit_bytes'), json_extract(s.summary, '$.mem_requested_bytes'))"
    # from the summaries (monitored jobs: few) to their usage rows, as store/usage.py's efficiency()
    rows = db.execute(
        f"""SELECT u.{column}, count(*),
                   sum({cpu} * {weight}) / nullif(sum(CASE WHEN {cpu} IS NOT NULL THEN {weight} END), 0),
                   avg(1.0 * {peak} / nullif({given}, 0))
            FROM job_summaries s CROSS JOIN usage_jobs u INDEXED BY usage_jobs_run ON u.run_id = s.run_id
            {where}{" AND" if where else " WHERE"} u.run_id IS NOT NULL
            GROUP BY u.{column} ORDER BY u.{column}""",
        args,
    ).fetchall()
    return [KeyEfficiency(str(r[0]), int(r[1]), r[2], r[3]) for r in rows]
