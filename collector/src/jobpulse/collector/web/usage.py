"""``GET /ui/api/usage`` (role ``user``; admins see everyone): the web interface's usage view (issue 19).

A thin adapter: it reads the query string, asks services/usage_view.py (which holds the rules, the
narrowing of a user to their own jobs among them) and maps the answer to columns the page's charts take
as they are. A bad parameter is a 400 naming it (``errors[0].key``), as everywhere in the API.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.domain.errors import InvalidInput
from jobpulse.collector.services.usage_view import UsageView, UsageViewQuery, UsageViewService
from litestar import Request, get
from litestar.params import FromQuery

DEFAULT_DAYS = 28  # no window given: the last four weeks, as the page first shows


def _day(value: str | None, name: str, default: date) -> date:
    if value is None or value == "":
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(name, f"{value[:40]!r} is not a date (YYYY-MM-DD)") from None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def mapped(view: UsageView) -> dict[str, Any]:
    """The view as JSON: periods as epoch seconds (uPlot's x) and as dates, one array per series."""
    q = view.query
    return {
        "since": q.since.isoformat(),
        "until": q.until.isoformat(),
        "group": q.group,
        "by": q.by,
        "filters": {"cluster": q.cluster, "partition": q.partition, "account": q.account, "user": q.user},
        "only_user": view.only_user,
        "periods": [p.isoformat() for p in view.periods],
        "times": [datetime(p.year, p.month, p.day, tzinfo=UTC).timestamp() for p in view.periods],
        "series": [
            {
                "key": s.key,
                "cpu_hours": [round(v, 3) for v in s.cpu_hours],
                "gpu_hours": [round(v, 3) for v in s.gpu_hours],
            }
            for s in view.series
        ],
        "rows": [
            {
                "key": r.key,
                "jobs": r.jobs,
                "cpu_hours": round(r.cpu_hours, 3),
                "gpu_hours": round(r.gpu_hours, 3),
                "users": r.users,
                "wait_mean_s": _round(r.wait_mean_s, 1),
                "monitored_jobs": r.monitored_jobs,
                "cpu_efficiency": _round(r.cpu_efficiency),
                "mem_efficiency": _round(r.mem_efficiency),
            }
            for r in view.rows
        ],
        "rows_left_out": view.rows_left_out,
        "totals": {
            "jobs": view.totals.jobs,
            "cpu_hours": round(view.totals.cpu_hours, 3),
            "gpu_hours": round(view.totals.gpu_hours, 3),
            "users": view.totals.users,
            "wait_mean_s": _round(view.totals.wait_mean_s, 1),
        },
        "clusters": view.clusters,
        "options": view.options,
    }


@get("/ui/api/usage", include_in_schema=False, guards=[requires(Role.USER)])
async def web_usage(
    request: Request[Any, Any, Any],
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    group: FromQuery[str] = "week",
    by: FromQuery[str] = "user",
    cluster: FromQuery[str | None] = None,
    partition: FromQuery[str | None] = None,
    account: FromQuery[str | None] = None,
    user: FromQuery[str | None] = None,
) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    last = _day(until, "until", today)
    first = _day(since, "since", last - timedelta(days=DEFAULT_DAYS - 1))
    query = UsageViewQuery(
        since=first,
        until=last,
        group=group,
        by=by,
        cluster=cluster,
        partition=partition,
        account=account,
        user=user,
    )
    view = await UsageViewService(request.app.state.store).view(principal_of(request), query)
    return mapped(view)
