"""Usage history (seed 000): one accounting record per (cluster, job), the filters of a usage question,
and the periods usage is grouped by.

Why one record per (cluster, job): the exporter re-sends whole weeks on every run, the backfill may run
twice, and a job monitored by agents is the same job as its accounting line. ``usage_jobs`` holds one
row per (cluster, job id as Slurm writes it: ``123``, ``123_4``, ``123+1``), whichever source said it
first; an accounting record replaces what a monitored run gave, never adds to it.

Times are seconds since the epoch. sacct prints the cluster's local time without a zone; it is read
as UTC, so a job's day is the day sacct printed (the dashboard's days are the cluster's days).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

PERIODS = ("day", "week", "month", "quarter", "year")

# Histogram bins (upper bounds, seconds) for waiting times and durations: the rollup keeps counts per
# bin so percentiles and histograms of any filter come from the rollup, never from every job.
BIN_BOUNDS = (60, 600, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)
BIN_LABELS = ("<1m", "1-10m", "10-60m", "1-4h", "4-12h", "12-24h", "1-3d", ">3d")


def bin_of(seconds: float) -> int:
    for index, bound in enumerate(BIN_BOUNDS):
        if seconds < bound:
            return index
    return len(BIN_BOUNDS)


@dataclass(frozen=True, slots=True)
class AccountingRecord:
    """One finished job as an accounting source (the exporter, the backfill) reports it."""

    job: str  # the job id as Slurm writes it
    user: str
    account: str
    partition: str
    state: str
    qos: str
    submit: int
    start: int | None
    end: int | None
    cpu_hours: float
    gpu_hours: float
    cpus: int
    gpus: int
    nodes: int
    nodelist: str

    @property
    def wait_seconds(self) -> float | None:
        return None if self.start is None else max(0, self.start - self.submit)

    @property
    def duration_seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return max(0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which jobs a usage question is about; an empty tuple means "any"."""

    cluster: str | None = None
    since: date | None = None  # submit day, inclusive
    until: date | None = None  # submit day, inclusive
    partitions: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    qos: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    only_user: str | None = None  # access rule: a user sees only their own jobs (services/access.py)

    def dims(self) -> dict[str, tuple[str, ...]]:
        """The dimension filters by rollup column."""
        users = self.users
        if self.only_user is not None:
            users = (self.only_user,)
        return {
            "partition": self.partitions,
            "account": self.accounts,
            "user_name": users,
            "qos": self.qos,
            "state": self.states,
        }

    @property
    def since_day(self) -> int | None:
        return None if self.since is None else day_number(self.since)

    @property
    def until_day(self) -> int | None:
        return None if self.until is None else day_number(self.until)


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def day_of(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


@dataclass
class UsageTotals:
    jobs: int = 0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    users: int = 0
    wait_mean_s: float | None = None
    wait_max_s: float | None = None


@dataclass
class UsageGroups:
    """A usage question's answer grouped one way: per key (a period, a partition, ...) its figures."""

    keys: list[str] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    cpu_hours: list[float] = field(default_factory=list)
    gpu_hours: list[float] = field(default_factory=list)
    users: list[int] = field(default_factory=list)
    wait_mean_s: list[float] = field(default_factory=list)
    wait_max_s: list[float] = field(default_factory=list)
    duration_mean_s: list[float] = field(default_factory=list)
    wait_bins: list[list[int]] = field(default_factory=list)
    duration_bins: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True)
class Efficiency:
    """What jobpulse's own summaries say about the monitored jobs among those asked about."""

    monitored_jobs: int
    cpu_efficiency_mean: float | None  # 0..1, weighted by CPU-hours
    gpu_util_mean: float | None  # percent
