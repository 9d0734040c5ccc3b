"""Usage broken down two ways at once (issue 19's usage view): per period *and* per user or account.

The usage-history questions (domain/usage.py) group one way (per period, or per user, ...); the web
interface's usage view draws one line per user or account over time and lists, per user or account,
what jobpulse's own summaries say about their monitored jobs. These are the plain values the store
hands back for that; the rules (which breakdowns, which periods, who may see what) are the service's
(services/usage_view.py).
"""

from __future__ import annotations

from typing import NamedTuple

# the columns a breakdown may be by, and the periods it may be grouped into
BREAKDOWN_COLUMNS = ("user_name", "account")
BREAKDOWN_PERIODS = ("week", "month")


class PeriodKeyUsage(NamedTuple):
    """The usage of one user or account (``key``) in one period starting on ``start_day`` (days since
    the epoch: a Monday for weeks, the 1st for months)."""

    start_day: int
    key: str
    jobs: int
    cpu_hours: float
    gpu_hours: float


class KeyEfficiency(NamedTuple):
    """What the summaries of the monitored jobs of one user or account say: how many there are, CPU
    efficiency (0..1, used of allocated core-seconds) and memory peak of what was given (0..1, a plain
    mean over the jobs)."""

    key: str
    monitored_jobs: int
    cpu_efficiency: float | None
    mem_efficiency: float | None
