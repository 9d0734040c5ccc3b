"""What the dashboard's charts need beyond the groupings (issue 18): the window trimmed to whole periods,
the "Color By" dimension, per-node usage from the jobs' node lists, and the sizes of jobs.

Why a module of its own: services/usage.py answers every dialect's usage questions; these rules are the
dashboard's (seed 000's front end), and what they mean is written here once:

- ``complete_periods_only``: the window loses its partial first and last period (a week is Monday to
  Sunday, as the period keys count weeks), so no chart ends on a half-empty period.
- Per-node usage: a job's CPU- and GPU-hours are shared evenly by the nodes of its node list (sacct says
  nothing finer); a job without a node list counts on no node.
- ``normalize_node_usage``: a node's hours as a percentage of what it could have given in the window
  (its CPUs, or GPUs, x the window's hours), for the nodes whose size jobpulse knows (from their agents);
  the others cannot be normalised and are left out of the normalised chart and named.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from jobpulse.collector.domain import hostnames
from jobpulse.collector.domain.errors import InvalidInput
from jobpulse.collector.domain.usage import BIN_BOUNDS, UsageFilter, UsageGroups

# The front end's "Color By" choices (Filters.tsx), and the rollup column each means
COLOR_BY = {
    "account": "account",
    "partition": "partition",
    "state": "state",
    "qos": "qos",
    "user": "user_name",
}


def color_column(value: str | None) -> str | None:
    """The dimension column of a ``color_by`` choice (None or "": no colouring).

    Raises:
        InvalidInput: naming ``color_by``.
    """
    if not value:
        return None
    column = COLOR_BY.get(value.strip().lower())
    if column is None:
        raise InvalidInput("color_by", "must be one of Account, Partition, State, QOS, User (or empty)")
    return column


def period_start(day: date, period: str) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def period_end(day: date, period: str) -> date:
    """The last day of the period holding ``day``."""
    if period == "day":
        return day
    if period == "week":
        return period_start(day, period) + timedelta(days=6)
    if period == "year":
        return date(day.year, 12, 31)
    months = 1 if period == "month" else 3
    first = period_start(day, period)
    month = first.month + months
    return date(first.year + (month > 12), (month - 1) % 12 + 1, 1) - timedelta(days=1)


def complete_periods(f: UsageFilter, period: str) -> UsageFilter:
    """``f`` without its partial first and last period (an open side stays open). A window shorter than
    one whole period becomes empty (``until`` before ``since``: nothing matches)."""
    since, until = f.since, f.until
    if since is not None and period_start(since, period) != since:
        since = period_end(since, period) + timedelta(days=1)
    if until is not None and period_end(until, period) != until:
        until = period_start(until, period) - timedelta(days=1)
    return replace(f, since=since, until=until)


def periods_in(since: date, until: date, period: str) -> int:
    """How many periods the window [since, until] touches."""
    count, day = 0, period_start(since, period)
    while day <= until:
        count += 1
        day = period_end(day, period) + timedelta(days=1)
    return count


def node_usage(rows: list[tuple[str, float, float]]) -> dict[str, tuple[float, float]]:
    """Per node (CPU-hours, GPU-hours) from (node list, CPU-hours, GPU-hours) rows: each row's hours
    shared evenly by the nodes of its list; an empty list counts on no node."""
    out: dict[str, list[float]] = {}
    for nodelist, cpu, gpu in rows:
        names = hostnames.expand(nodelist) if nodelist else []
        for name in names:
            figures = out.setdefault(name, [0.0, 0.0])
            figures[0] += cpu / len(names)
            figures[1] += gpu / len(names)
    return {name: (out[name][0], out[name][1]) for name in hostnames.sort(out)}


def users_of(rows: list[tuple[Any, ...]]) -> UsageGroups:
    """(user, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s) rows, by user, as
    a grouping by user (as ``usage_grouped(f, "user_name")`` answers: 1 user each, no bins)."""
    out = UsageGroups()
    for user, jobs, cpu, gpu, waited, wait_s, wait_max, ran, duration_s in rows:
        out.keys.append(str(user))
        out.jobs.append(int(jobs))
        out.cpu_hours.append(float(cpu))
        out.gpu_hours.append(float(gpu))
        out.users.append(1)
        out.wait_mean_s.append(wait_s / waited if waited else 0.0)
        out.wait_max_s.append(float(wait_max or 0))
        out.duration_mean_s.append(duration_s / ran if ran else 0.0)
        out.wait_bins.append([0] * (len(BIN_BOUNDS) + 1))
        out.duration_bins.append([0] * (len(BIN_BOUNDS) + 1))
    return out
