"""The scheduled passes' methods of :class:`~jobpulse.collector.store.sqlite.SqliteStore`: the summary
pass's reads and writes (``SummaryStore``) and the storage jobs (``MaintenanceStore``) of store/base.py.

A mixin like sqlite_jobs.py: the SQL stays in the modules per concern (summaries.py, rollup.py,
retention.py, maintenance.py); this class names the operations and runs each on the right thread. A
summary's figures are read on a reader connection, so a long computation never holds up ingest; the
rest writes, on the single writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from jobpulse.collector.store import maintenance, summaries
from jobpulse.collector.store.base import RunFigures
from jobpulse.collector.store.retention import RetentionResult, apply_retention
from jobpulse.collector.store.rollup import RollupResult, rollup

T = TypeVar("T")


class SqliteUpkeep:
    """Summaries, rollups, retention, checkpoints and planner statistics (see ``SummaryStore`` and
    ``MaintenanceStore``)."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    # -- the summary pass ------------------------------------------------------------------------
    async def runs_to_summarize(self, now: float, delay_s: float, limit: int) -> list[int]:
        return await self._read(lambda db: summaries.pending_runs(db, now, delay_s, limit))

    async def run_figures(self, run_id: int, now: float) -> RunFigures | None:
        return await self._read(lambda db: summaries.run_figures(db, run_id, now))

    async def save_summary(
        self, run_id: int, computed: float, summary: dict[str, Any], findings: Sequence[str]
    ) -> None:
        await self._write(lambda db: summaries.store_summary(db, run_id, computed, summary, findings))

    async def summaries_done(self, now: float, delay_s: float) -> None:
        await self._write(lambda db: summaries.advance_watermark(db, now, delay_s))

    # -- the storage jobs ------------------------------------------------------------------------
    async def rollup(self, now_ms: int, lag_ms: int) -> RollupResult:
        return await self._write(lambda db: rollup(db, now_ms, lag_ms))

    async def apply_retention(
        self, now_ms: int, raw_days: float, days_1m: float, days_1h: float
    ) -> RetentionResult:
        return await self._write(lambda db: apply_retention(db, now_ms, raw_days, days_1m, days_1h))

    async def checkpoint(self) -> tuple[int, int, int]:
        return await self._write(maintenance.checkpoint)

    async def optimize(self) -> None:
        await self._write(maintenance.optimize)
