"""The web interface's usage view (issue 19): usage per user or account over time, from issue 18's usage
statistics.

What it answers, for a window of submit days, grouped per week or month and filtered by cluster,
partition, account and user: one series of CPU-hours and GPU-hours per user or account (the biggest
few; the rest summed as one), and one row per user or account with its jobs, hours, mean wait and, for
its monitored jobs, CPU and memory efficiency.

The access rule is the usage history's (services/access.py ``visible_user``, as services/usage.py
applies it): a user's question is narrowed to their own jobs here, in the service, whatever the page
or the query string asks, so another user's figures never leave the collector. The figures are
UsageService's own questions (totals, per user or account) plus the two-way breakdown only this view
asks (store/usage_view.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from jobpulse.collector.domain.errors import InvalidInput
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.domain.usage import UsageFilter, UsageTotals, day_number
from jobpulse.collector.domain.usage_view import BREAKDOWN_PERIODS
from jobpulse.collector.services.access import visible_user
from jobpulse.collector.services.usage import UsageService
from jobpulse.collector.store.base import UsageViewStore

BREAKDOWNS = {"user": "user_name", "account": "account"}  # the view's word -> the rollup's column
TOP_SERIES = 8  # lines drawn; the other users or accounts are summed into one
MAX_ROWS = 500  # table rows sent (the biggest by CPU-hours); the rest are counted, not listed
MAX_DAYS = 5 * 366  # the longest window: five years
MAX_TEXT = 256
OTHERS = "(others)"
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class UsageViewQuery:
    """What the view asks: a window of submit days (inclusive), how to group and break it down, and
    filters (None: any)."""

    since: date
    until: date
    group: str = "week"  # BREAKDOWN_PERIODS
    by: str = "user"  # BREAKDOWNS
    cluster: str | None = None
    partition: str | None = None
    account: str | None = None
    user: str | None = None


@dataclass
class UsageSeries:
    """One user's or account's hours per period (``key`` is OTHERS for the rest summed)."""

    key: str
    cpu_hours: list[float]
    gpu_hours: list[float]


@dataclass
class UsageRow:
    """One user's or account's figures over the whole window."""

    key: str
    jobs: int
    cpu_hours: float
    gpu_hours: float
    users: int
    wait_mean_s: float | None
    monitored_jobs: int = 0
    cpu_efficiency: float | None = None  # 0..1, used of allocated core-seconds of the monitored jobs
    mem_efficiency: float | None = None  # 0..1, peak of what was given, mean of the monitored jobs


@dataclass
class UsageView:
    query: UsageViewQuery
    only_user: str | None  # the user the answer is narrowed to (a user's own view); None: everyone
    periods: list[date]  # the first day of each period (a Monday, or the 1st)
    series: list[UsageSeries]
    rows: list[UsageRow]
    rows_left_out: int
    totals: UsageTotals
    clusters: list[str]
    options: dict[str, list[str]] = field(default_factory=dict)  # partitions, accounts, users to pick


def _text(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise InvalidInput(name, f"must be at most {MAX_TEXT} printable characters")
    return value


def checked(q: UsageViewQuery) -> UsageViewQuery:
    """``q`` if it is a question the view answers (empty filters as None).

    Raises:
        InvalidInput: naming ``group``, ``by``, ``until``, ``since`` or the filter that is wrong.
    """
    if q.group not in BREAKDOWN_PERIODS:
        raise InvalidInput("group", f"must be one of {', '.join(BREAKDOWN_PERIODS)}")
    if q.by not in BREAKDOWNS:
        raise InvalidInput("by", f"must be one of {', '.join(BREAKDOWNS)}")
    if q.until < q.since:
        raise InvalidInput("until", "is before since")
    if (q.until - q.since).days >= MAX_DAYS:
        raise InvalidInput("since", f"the window may be at most {MAX_DAYS} days")
    return replace(
        q,
        cluster=_text(q.cluster, "cluster"),
        partition=_text(q.partition, "partition"),
        account=_text(q.account, "account"),
        user=_text(q.user, "user"),
    )


def period_start(day: date, group: str) -> date:
    """The first day of the week (Monday) or month ``day`` is in: what the store groups by."""
    return day - timedelta(days=day.weekday()) if group == "week" else day.replace(day=1)


def periods_of(since: date, until: date, group: str) -> list[date]:
    """Every period from the one ``since`` is in to the one ``until`` is in, empty ones too (a chart's
    gap is a period without jobs, not a missing point)."""
    out, at = [], period_start(since, group)
    while at <= until:
        out.append(at)
        at = (
            at + timedelta(days=7)
            if group == "week"
            else date(at.year + at.month // 12, at.month % 12 + 1, 1)
        )
    return out


class UsageViewService:
    """The usage view's questions over a store with the usage history and its breakdowns."""

    def __init__(self, store: UsageViewStore) -> None:
        self.store = store
        self.usage = UsageService(store)

    async def view(self, principal: Principal, query: UsageViewQuery) -> UsageView:
        """The usage view for ``principal``: everyone's for an admin, a user's own otherwise.

        Raises:
            InvalidInput: a question the view does not answer (see :func:`checked`).
        """
        q = checked(query)
        column = BREAKDOWNS[q.by]
        f = UsageFilter(
            cluster=q.cluster,
            since=q.since,
            until=q.until,
            partitions=(q.partition,) if q.partition else (),
            accounts=(q.account,) if q.account else (),
            users=(q.user,) if q.user else (),
        )
        # UsageService narrows its own questions; the breakdowns below get the same narrowing here
        totals = await self.usage.totals(principal, f)
        only_user = visible_user(principal)
        if only_user is not None and q.user is not None:
            q = replace(q, user=only_user)  # the narrowing replaces a user filter: say so in the answer
        scoped = replace(f, only_user=only_user)
        groups = await self.usage.grouped(principal, f, column, users=q.by != "user")
        efficiency = {e.key: e for e in await self.store.usage_efficiency_per(scoped, column)}
        rows = [
            UsageRow(
                key=key,
                jobs=groups.jobs[i],
                cpu_hours=groups.cpu_hours[i],
                gpu_hours=groups.gpu_hours[i],
                users=groups.users[i],
                wait_mean_s=groups.wait_mean_s[i],
            )
            for i, key in enumerate(groups.keys)
        ]
        for row in rows:
            eff = efficiency.get(row.key)
            if eff is not None:
                row.monitored_jobs = eff.monitored_jobs
                row.cpu_efficiency = eff.cpu_efficiency
                row.mem_efficiency = eff.mem_efficiency
        rows.sort(key=lambda r: (-r.cpu_hours, -r.gpu_hours, -r.jobs, r.key))
        periods = periods_of(q.since, q.until, q.group)
        series = await self._series(scoped, q, periods, [r.key for r in rows])
        dims = await self.usage.dimensions(principal, replace(f, partitions=(), accounts=(), users=()))
        return UsageView(
            query=q,
            only_user=only_user,
            periods=periods,
            series=series,
            rows=rows[:MAX_ROWS],
            rows_left_out=max(0, len(rows) - MAX_ROWS),
            totals=totals,
            clusters=[c for c, _, _ in await self.usage.clusters()],
            options={
                "partitions": dims["partition"],
                "accounts": dims["account"],
                "users": dims["user_name"],
            },
        )

    async def _series(
        self, scoped: UsageFilter, q: UsageViewQuery, periods: list[date], ranked: list[str]
    ) -> list[UsageSeries]:
        """One series per user or account among the TOP_SERIES biggest (``ranked``: biggest first), and
        one of the others summed when there are more."""
        top = ranked[:TOP_SERIES]
        index = {day_number(p): i for i, p in enumerate(periods)}
        lines = {key: UsageSeries(key, [0.0] * len(periods), [0.0] * len(periods)) for key in top}
        others = UsageSeries(OTHERS, [0.0] * len(periods), [0.0] * len(periods))
        for cell in await self.store.usage_per_period_and(scoped, q.group, BREAKDOWNS[q.by]):
            at = index.get(cell.start_day)
            if at is None:  # cannot happen: the window's days are in its periods
                continue
            line = lines.get(cell.key, others)
            line.cpu_hours[at] += cell.cpu_hours
            line.gpu_hours[at] += cell.gpu_hours
        out = [lines[key] for key in top]
        if len(ranked) > TOP_SERIES:
            out.append(others)
        return out
