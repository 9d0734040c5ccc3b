"""Usage history (seed 000): accounting ingest and the usage questions, for every dialect and the CLI.

The rules: an ingested request is checked whole before anything is stored (a bad record is an
InvalidInput naming ``jobs[i].Field``, and nothing of that request is kept); records are idempotent per
(cluster, job id); a user sees only their own jobs (services/access.py, the same rule as the job
pages), so every question a user asks is narrowed to their jobs; monitored jobs that no accounting
source reported count by their allocation (store/usage.py ``sync_monitored``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from jobpulse.collector.domain import hostnames
from jobpulse.collector.domain.errors import InvalidInput
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.domain.usage import (
    BIN_BOUNDS,
    PERIODS,
    AccountingRecord,
    Efficiency,
    UsageFilter,
    UsageGroups,
    UsageTotals,
    day_of,
)
from jobpulse.collector.services import usage_charts
from jobpulse.collector.services.access import visible_user
from jobpulse.collector.store.base import UsageStore
from jobpulse.common.validate import InvalidField

MAX_TEXT = 256
_CLUSTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_MISSING = frozenset({"", "unknown", "none", "n/a"})


# -- ingest: the exporter's records -------------------------------------------------------------------------
def parse_cluster(value: Any, field: str = "hostname") -> str:
    if not isinstance(value, str) or not _CLUSTER.match(value):
        raise InvalidInput(
            field, "must be a cluster name: 1-128 letters, digits and ._- (starting alphanumeric)"
        )
    return value


def parse_time(value: Any, field: str, required: bool) -> int | None:
    """sacct's time text (``2025-01-01T10:00:00`` or with a space) as seconds since the epoch, read as UTC;
    sacct's words for no time (``Unknown``, ``None``, empty) are None unless ``required``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _MISSING):
        if required:
            raise InvalidInput(field, "is required (a time such as 2025-01-01 10:00:00)")
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidInput(field, "must be a time such as 2025-01-01 10:00:00 or 2025-01-01T10:00:00")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(field, f"{value[:40]!r} is not a time such as 2025-01-01 10:00:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _text(value: Any, field: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise InvalidInput(field, f"must be at most {MAX_TEXT} printable characters")
    return value


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInput(field, "must be a whole number")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidInput(field, "must be a whole number")
    if not 0 <= value <= 10**9:
        raise InvalidInput(field, "must be between 0 and 1e9")
    return int(value)


def _hours(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(field, "must be a finite number of hours")
    if not 0 <= value <= 1e12:
        raise InvalidInput(field, "must be between 0 and 1e12 hours")
    return float(value)


def parse_state(value: Any, field: str) -> str:
    text = _text(value, field).strip().upper()
    state = text.split(" ", 1)[0]  # "CANCELLED by 123"
    if not state or not state.isascii() or not state.replace("_", "").isalpha():
        raise InvalidInput(field, f"{text[:40]!r} is not a Slurm job state")
    return state  # a job sent while REQUEUED or SUSPENDED is stored so; the exporter's next run replaces it


def parse_record(raw: Any, where: str) -> AccountingRecord:
    """One exporter record (``jobs[i]``); InvalidInput names ``jobs[i].Field``."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(where, "must be an object (a job record)")

    def f(name: str) -> str:
        return f"{where}.{name}"

    job = _text(raw.get("JobID"), f("JobID"))
    try:
        JobId.parse(job, f("JobID"))
    except InvalidField as exc:
        raise InvalidInput(exc.field, exc.reason) from None
    submit = parse_time(raw.get("Submit"), f("Submit"), required=True)
    start = parse_time(raw.get("Start"), f("Start"), required=False)
    end = parse_time(raw.get("End"), f("End"), required=False)
    assert submit is not None
    if start is not None and end is not None and end < start:
        raise InvalidInput(f("End"), "is before Start")
    nodelist = _text(raw.get("NodeList", ""), f("NodeList"), required=False)
    return AccountingRecord(
        job=job,
        user=_text(raw.get("User"), f("User")),
        account=_text(raw.get("Account", ""), f("Account"), required=False),
        partition=_text(raw.get("Partition", ""), f("Partition"), required=False),
        state=parse_state(raw.get("State"), f("State")),
        qos=_text(raw.get("QOS"), f("QOS"), required=False),
        submit=submit,
        start=start,
        end=end,
        cpu_hours=_hours(raw.get("CPUHours", 0.0), f("CPUHours")),
        gpu_hours=_hours(raw.get("GPUHours", 0.0), f("GPUHours")),
        cpus=_count(raw.get("AllocCPUS", 0), f("AllocCPUS")),
        gpus=_count(raw.get("AllocGPUS", 0), f("AllocGPUS")),
        # The exporter counts nodes by splitting NodeList on commas, so "n[1-3]" arrives as 1 node: the
        # node list, expanded, says how many nodes the job had when it says more.
        nodes=max(_count(raw.get("AllocNodes", 0), f("AllocNodes")), len(hostnames.expand(nodelist))),
        nodelist=nodelist,
    )


def parse_records(jobs: Any) -> list[AccountingRecord]:
    """Every record of a request, checked before any is stored; a job id sent twice keeps the last."""
    if not isinstance(jobs, list):
        raise InvalidInput("jobs", "must be a list of job records")
    records: dict[str, AccountingRecord] = {}
    for index, raw in enumerate(jobs):
        record = parse_record(raw, f"jobs[{index}]")
        records[record.job] = record
    return list(records.values())


@dataclass(frozen=True)
class IngestResult:
    cluster: str
    received: int
    new: int
    changed: int
    unchanged: int


@dataclass(frozen=True)
class Dashboard:
    """What the dashboard's charts are drawn from: one grouping per chart family, and (when asked with
    ``charts=True``) what the per-job, per-node, Color By and user activity charts need."""

    totals: UsageTotals
    periods: UsageGroups
    states: UsageGroups
    partitions: UsageGroups
    accounts: UsageGroups
    users: UsageGroups
    period: str = "month"
    since: date | None = None  # the window asked about (after complete_periods_only), None: open
    until: date | None = None
    sizes: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # cpus|gpus|nodes: (count, jobs)
    nodes: dict[str, tuple[float, float]] = field(default_factory=dict)  # node: (CPU-hours, GPU-hours)
    hardware: dict[str, tuple[int, int]] = field(default_factory=dict)  # node: (CPUs, GPUs) agents reported
    user_periods: dict[str, int] = field(default_factory=dict)  # user: periods with a submitted job
    color_by: str | None = None  # the Color By dimension column
    # (period key, value, jobs, CPU-hours, GPU-hours, waiting seconds, duration seconds) per Color By value
    color_periods: list[tuple[Any, ...]] = field(default_factory=list)


def percentile_from_bins(bins: Sequence[int], q: float) -> float:
    """The ``q`` quantile (0..1) of a binned distribution, interpolated inside its bin (seconds)."""
    total = sum(bins)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    lower = 0.0
    for index, count in enumerate(bins):
        upper = float(BIN_BOUNDS[index]) if index < len(BIN_BOUNDS) else lower * 2 or 1.0
        if count and seen + count >= rank:
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    return lower


class UsageService:
    """Usage history over a :class:`UsageStore`; one per app (``app.state.usage``) and per CLI run."""

    def __init__(self, store: UsageStore) -> None:
        self.store = store

    async def ingest(self, cluster: Any, jobs: Any, source: str = "ingest") -> IngestResult:
        """Check a whole request, then store it in one transaction.

        Raises:
            InvalidInput: ``hostname`` or ``jobs[i].Field``; nothing was stored.
        """
        name = parse_cluster(cluster)
        records = parse_records(jobs)
        return await self.store_records(name, records, source, received=len(jobs))

    async def store_records(
        self, cluster: str, records: Sequence[AccountingRecord], source: str, received: int | None = None
    ) -> IngestResult:
        new, changed, unchanged = await self.store.ingest_accounting(cluster, records, source)
        count = len(records) if received is None else received
        return IngestResult(cluster, count, new, changed, unchanged)

    # -- questions -------------------------------------------------------------------------------------
    async def _scoped(self, principal: Principal | None, f: UsageFilter) -> UsageFilter:
        """``f`` narrowed to what ``principal`` may see (None: the CLI, an operator on the host), with
        the monitored runs counted so far."""
        await self.store.sync_monitored_usage()
        if principal is None:
            return f
        return replace(f, only_user=visible_user(principal))

    async def clusters(self) -> list[tuple[str, date, date]]:
        await self.store.sync_monitored_usage()
        return [
            (c, day_of(first * 86400), day_of(last * 86400))
            for c, first, last in await self.store.usage_clusters()
        ]

    async def dimensions(self, principal: Principal | None, f: UsageFilter) -> dict[str, list[str]]:
        return await self.store.usage_dimensions(await self._scoped(principal, f))

    async def totals(self, principal: Principal | None, f: UsageFilter) -> UsageTotals:
        return await self.store.usage_totals(await self._scoped(principal, f))

    async def grouped(
        self, principal: Principal | None, f: UsageFilter, by: str, users: bool = True
    ) -> UsageGroups:
        """Usage per ``by``; ``users`` False leaves the distinct users per value of a dimension other than
        the user 0. Per period they are always counted (as this always did; only the dashboard's own read
        skips them, as it counts them another way)."""
        if by.startswith("period:") and by.partition(":")[2] not in PERIODS:
            raise InvalidInput("period_type", f"must be one of {', '.join(PERIODS)}")
        period = by.startswith("period:")
        return await self.store.usage_grouped(await self._scoped(principal, f), by, users or period)

    async def efficiency(self, principal: Principal | None, f: UsageFilter) -> Efficiency:
        return await self.store.usage_efficiency(await self._scoped(principal, f))

    async def jobs(
        self, principal: Principal | None, f: UsageFilter, limit: int, offset: int = 0
    ) -> list[dict[str, Any]]:
        return await self.store.usage_jobs(await self._scoped(principal, f), limit, offset)

    async def dashboard(
        self,
        principal: Principal | None,
        f: UsageFilter,
        period: str,
        charts: bool = False,
        color_by: str | None = None,
        complete_periods_only: bool = False,
    ) -> Dashboard:
        """The dashboard's figures. ``charts``: also the per-job sizes, per-node usage, user activity
        and, with ``color_by`` (a Color By choice: Account, Partition, State, QOS, User), the periods
        per value of that dimension; ``complete_periods_only``: the window without its partial first and
        last period (services/usage_charts.py)."""
        if period not in PERIODS:
            raise InvalidInput("period_type", f"must be one of {', '.join(PERIODS)}")
        column = usage_charts.color_column(color_by)
        if complete_periods_only:
            f = usage_charts.complete_periods(f, period)
        scoped = await self._scoped(principal, f)
        dims = await self.store.usage_grouped_dims(scoped, ("state", "partition", "account"))
        if not charts:
            return Dashboard(
                totals=await self.store.usage_totals(scoped),
                periods=await self.store.usage_grouped(scoped, f"period:{period}"),
                states=dims["state"],
                partitions=dims["partition"],
                accounts=dims["account"],
                users=await self.store.usage_grouped(scoped, "user_name"),
                period=period,
                since=f.since,
                until=f.until,
            )
        # the users' figures, per period and in all, from one read (usage_user_summary) rather than four
        rows, per_period, active = await self.store.usage_user_summary(scoped, period)
        totals = await self.store.usage_totals(scoped, users=False)
        periods = await self.store.usage_grouped(scoped, f"period:{period}", users=False)
        periods.users = [per_period.get(k, 0) for k in periods.keys]
        users = usage_charts.users_of(rows)
        shapes = await self.store.usage_breakdown(scoped, ("cpus", "gpus", "nodes", "nodelist"))
        sizes = {
            kind: sorted((int(r[0]), int(r[1])) for r in shapes[kind]) for kind in ("cpus", "gpus", "nodes")
        }
        nodes = usage_charts.node_usage([(str(r[0]), float(r[2]), float(r[3])) for r in shapes["nodelist"]])
        return Dashboard(
            totals=replace(totals, users=len(users.keys)),
            periods=periods,
            states=dims["state"],
            partitions=dims["partition"],
            accounts=dims["account"],
            users=users,
            period=period,
            since=f.since,
            until=f.until,
            sizes=sizes,
            nodes=nodes,
            hardware=await self.store.usage_node_hardware(f.cluster) if nodes else {},
            user_periods=active,
            color_by=column,
            color_periods=await self.store.usage_by_period_and(scoped, period, column) if column else [],
        )


def report_window(kind: str, year: int, month: int | None, quarter: int | None) -> tuple[date, date, str]:
    """(first day, last day, label) of a monthly, quarterly or annual report.

    Raises:
        InvalidInput: naming ``type``, ``year``, ``month`` or ``quarter``.
    """
    if not 2000 <= year <= 2100:
        raise InvalidInput("year", "must be between 2000 and 2100")
    if kind == "annual":
        return date(year, 1, 1), date(year, 12, 31), str(year)
    if kind == "monthly":
        if month is None or not 1 <= month <= 12:
            raise InvalidInput("month", "a monthly report needs month=1..12")
        last = date(year + (month == 12), month % 12 + 1, 1).toordinal() - 1
        return date(year, month, 1), date.fromordinal(last), f"{year}-{month:02d}"
    if kind == "quarterly":
        if quarter is None or not 1 <= quarter <= 4:
            raise InvalidInput("quarter", "a quarterly report needs quarter=1..4")
        first = date(year, 3 * quarter - 2, 1)
        end_month = 3 * quarter
        last = date(year + (end_month == 12), end_month % 12 + 1, 1).toordinal() - 1
        return first, date.fromordinal(last), f"{year}-Q{quarter}"
    raise InvalidInput("type", "must be monthly, quarterly or annual")
