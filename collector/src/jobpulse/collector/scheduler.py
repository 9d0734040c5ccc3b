"""The collector's periodic storage jobs on an APScheduler AsyncIOScheduler in the serve() event loop.

Every job is a named store method (store/base.py ``MaintenanceStore``) or the summary pass
(services/summaries.py), and the store runs each write on its single writer; the scheduler only
decides when. ``max_instances=1`` and ``coalesce`` keep a slow pass from piling up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from jobpulse.collector.findings import Thresholds
from jobpulse.collector.services import summaries
from jobpulse.collector.services.events import EventBus
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.base import Store
from jobpulse.collector.store.errors import StoreUnavailable

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


def storage_jobs(
    store: Store, s: CollectorSettings, bus: EventBus | None = None
) -> dict[str, tuple[float, Callable[[], Awaitable[None]]]]:
    """name -> (interval seconds, coroutine function); also what tests run directly. ``bus``: where the
    summary pass publishes its findings."""
    thresholds = Thresholds.from_settings(s)

    def now_ms() -> int:
        return int(time.time() * 1000)

    return {
        "rollup": (
            s.rollup_interval,
            _guarded("rollup", lambda: store.rollup(now_ms(), int(s.rollup_lag * 1000))),
        ),
        "retention": (
            s.retention_interval,
            _guarded(
                "retention",
                lambda: store.apply_retention(
                    now_ms(), s.retention_raw_days, s.retention_1m_days, s.retention_1h_days
                ),
            ),
        ),
        "summaries": (
            s.summary_interval,
            _guarded(
                "summaries",
                lambda: summaries.summarize_pass(store, time.time(), s.summary_delay, thresholds, bus),
            ),
        ),
        "checkpoint": (s.checkpoint_interval, _guarded("checkpoint", store.checkpoint)),
        "optimize": (s.optimize_interval, _guarded("optimize", store.optimize)),
    }


def start_scheduler(store: Store, s: CollectorSettings, bus: EventBus | None = None) -> AsyncIOScheduler:
    """Start the storage jobs on the running event loop; the caller shuts the scheduler down."""
    scheduler = AsyncIOScheduler()
    for name, (interval, job) in storage_jobs(store, s, bus).items():
        if interval > 0:
            scheduler.add_job(job, "interval", seconds=interval, id=name, max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
