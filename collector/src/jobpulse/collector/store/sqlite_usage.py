"""The usage section of the storage protocol (store/base.py ``UsageStore``) for SQLite: a mixin of
:class:`~jobpulse.collector.store.sqlite.SqliteStore`; the SQL is store/usage.py's."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from jobpulse.collector.domain.usage import (
    AccountingRecord,
    Efficiency,
    UsageFilter,
    UsageGroups,
    UsageTotals,
)
from jobpulse.collector.store import usage
from jobpulse.collector.store.sqlite_jobs import _transaction

T = TypeVar("T")


class SqliteUsage:
    """Accounting records, the usage rollup and the questions asked of it (see ``UsageStore``)."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def ingest_accounting(
        self, cluster: str, records: Sequence[AccountingRecord], source: str
    ) -> tuple[int, int, int]:
        return await self._write(
            _transaction(lambda db: usage.ingest_accounting(db, cluster, records, source), immediate=True)
        )

    async def sync_monitored_usage(self) -> int:
        async def once() -> int:
            return await self._write(_transaction(usage.sync_monitored, immediate=True))

        if not await self._read(usage.monitored_pending):
            return 0
        total = 0
        while True:
            looked = await once()
            total += looked
            if looked < 20_000:
                return total

    async def usage_clusters(self) -> list[tuple[str, int, int]]:
        return await self._read(usage.clusters)

    async def usage_dimensions(self, f: UsageFilter) -> dict[str, list[str]]:
        return await self._read(lambda db: usage.dimension_values(db, f))

    async def usage_totals(self, f: UsageFilter, users: bool = True) -> UsageTotals:
        return await self._read(lambda db: usage.totals(db, f, users))

    async def usage_grouped(self, f: UsageFilter, by: str, users: bool = True) -> UsageGroups:
        return await self._read(lambda db: usage.grouped(db, f, by, users))

    async def usage_grouped_dims(self, f: UsageFilter, bys: Sequence[str]) -> dict[str, UsageGroups]:
        return await self._read(lambda db: usage.grouped_dims(db, f, bys))

    async def usage_efficiency(self, f: UsageFilter) -> Efficiency:
        return await self._read(lambda db: usage.efficiency(db, f))

    async def usage_jobs(self, f: UsageFilter, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        return await self._read(lambda db: usage.job_rows(db, f, limit, offset))

    async def usage_breakdown(self, f: UsageFilter, kinds: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
        return await self._read(lambda db: usage.breakdown(db, f, kinds))

    async def usage_by_period_and(self, f: UsageFilter, period: str, by: str) -> list[tuple[Any, ...]]:
        return await self._read(lambda db: usage.grouped_by_period_and(db, f, period, by))

    async def usage_user_summary(
        self, f: UsageFilter, period: str
    ) -> tuple[list[tuple[Any, ...]], dict[str, int], dict[str, int]]:
        return await self._read(lambda db: usage.user_summary(db, f, period))

    async def usage_node_hardware(self, cluster: str | None) -> dict[str, tuple[int, int]]:
        return await self._read(lambda db: usage.node_hardware(db, cluster))
