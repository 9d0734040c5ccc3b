"""The usage view's section of the storage protocol (store/base.py ``UsageViewStore``) for SQLite: a
mixin of :class:`~jobpulse.collector.store.sqlite.SqliteStore`; the SQL is store/usage_view.py's."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from jobpulse.collector.domain.usage import UsageFilter
from jobpulse.collector.domain.usage_view import KeyEfficiency, PeriodKeyUsage
from jobpulse.collector.store import usage_view

T = TypeVar("T")


class SqliteUsageView:
    """Usage per period and user or account, and efficiency per user or account (reads only)."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def usage_per_period_and(self, f: UsageFilter, period: str, by: str) -> list[PeriodKeyUsage]:
        return await self._read(lambda db: usage_view.per_period_and(db, f, period, by))

    async def usage_efficiency_per(self, f: UsageFilter, by: str) -> list[KeyEfficiency]:
        return await self._read(lambda db: usage_view.efficiency_per(db, f, by))
