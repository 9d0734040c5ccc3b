"""The collector's periodic storage jobs on an APScheduler AsyncIOScheduler in the serve() event loop.

Every job writes through ``SqliteStore.write`` so the process keeps exactly one SQLite writer; the
scheduler only decides when. ``max_instances=1`` and ``coalesce`` keep a slow pass from piling up.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from jobpulse.collector.findings import Thresholds
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import maintenance
from jobpulse.collector.store.errors import StoreUnavailable
from jobpulse.collector.store.retention import apply_retention
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.collector.summary import (
    JobSummary,
    advance_watermark,
    build_summary,
    pending_runs,
    store_summary,
)

log = logging.getLogger(__name__)


def _guarded(name: str, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        started = time.monotonic()
        try:
            result = await job()
        except StoreUnavailable:
            return  # a full disk: the store logs it once, not every pass
        except Exception:
            log.exception("storage job %s failed; it runs again at its next interval", name)
            return
        log.debug("storage job %s: %s in %.3f s", name, result, time.monotonic() - started)

    return run


async def summarize_pass(
    store: SqliteStore, s: CollectorSettings, thresholds: Thresholds, limit: int = 200
) -> int:
    """Summaries are computed on a reader connection (a 64-node day of raw samples takes a while) and
    only stored on the writer, so ingest does not wait for the computation."""
    now = time.time()
    runs = await store.read(lambda db: pending_runs(db, now, s.summary_delay, limit))
    for run_id in runs:
        summary = await store.read(partial(build_summary, run_id=run_id, now=now, thresholds=thresholds))
        if summary is not None:
            await store.write(partial(_store, summary=summary, now=now))
    if len(runs) < limit:
        await store.write(lambda db: advance_watermark(db, now, s.summary_delay))
    return len(runs)


def _store(db: sqlite3.Connection, summary: JobSummary, now: float) -> None:
    store_summary(db, summary, now)


def storage_jobs(
    store: SqliteStore, s: CollectorSettings
) -> dict[str, tuple[float, Callable[[], Awaitable[None]]]]:
    """name -> (interval seconds, coroutine function); also what tests run directly."""
    thresholds = Thresholds.from_settings(s)

    def now_ms() -> int:
        return int(time.time() * 1000)

    return {
        "rollup": (
            s.rollup_interval,
            _guarded(
                "rollup", lambda: store.write(lambda db: rollup(db, now_ms(), int(s.rollup_lag * 1000)))
            ),
        ),
        "retention": (
            s.retention_interval,
            _guarded(
                "retention",
                lambda: store.write(
                    lambda db: apply_retention(
                        db, now_ms(), s.retention_raw_days, s.retention_1m_days, s.retention_1h_days
                    )
                ),
            ),
        ),
        "summaries": (
            s.summary_interval,
            _guarded("summaries", lambda: summarize_pass(store, s, thresholds)),
        ),
        "checkpoint": (
            s.checkpoint_interval,
            _guarded("checkpoint", lambda: store.write(maintenance.checkpoint)),
        ),
        "optimize": (s.optimize_interval, _guarded("optimize", lambda: store.write(maintenance.optimize))),
    }


def start_scheduler(store: SqliteStore, s: CollectorSettings) -> AsyncIOScheduler:
    """Start the storage jobs on the running event loop; the caller shuts the scheduler down."""
    scheduler = AsyncIOScheduler()
    for name, (interval, job) in storage_jobs(store, s).items():
        if interval > 0:
            scheduler.add_job(job, "interval", seconds=interval, id=name, max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
