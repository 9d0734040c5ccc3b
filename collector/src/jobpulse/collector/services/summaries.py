"""The summary pass: every finished job run gets its summary and efficiency findings, once.

Why a service: the steps are the store's (store/base.py ``SummaryStore``: which runs are due, their
figures, the result) and the rules are plain functions (summary.py, findings.py); this is the order
they run in. A run's figures are read on a reader connection (a 64-node day of raw samples takes a
while) and only the result is written, so ingest does not wait for the computation. Once a summary is
committed, each of its findings is published on the event bus as :class:`FindingAdded`.
"""

from __future__ import annotations

from jobpulse.collector.findings import Thresholds
from jobpulse.collector.services.events import EventBus, FindingAdded
from jobpulse.collector.store.base import SummaryStore
from jobpulse.collector.summary import JobSummary, build_summary


async def summarize_run(
    store: SummaryStore, run_id: int, now: float, thresholds: Thresholds, bus: EventBus | None = None
) -> JobSummary | None:
    """Compute, evaluate and store the summary of one run (its findings become tags and events); None
    when there is no such run."""
    figures = await store.run_figures(run_id, now)
    if figures is None:
        return None
    summary = build_summary(figures, thresholds)
    await store.save_summary(run_id, now, summary.to_dict(), [f.rule for f in summary.findings])
    if bus is not None:
        for finding in summary.findings:
            bus.publish(FindingAdded(summary.job_id, finding.rule))
    return summary


async def summarize_pass(
    store: SummaryStore,
    now: float,
    delay_s: float,
    thresholds: Thresholds,
    bus: EventBus | None = None,
    limit: int = 200,
) -> int:
    """Summarize up to ``limit`` runs that stopped at least ``delay_s`` before ``now``; how many. When
    that was all of them, later passes start after ``now - delay_s``."""
    runs = await store.runs_to_summarize(now, delay_s, limit)
    for run_id in runs:
        await summarize_run(store, run_id, now, thresholds, bus)
    if len(runs) < limit:
        await store.summaries_done(now, delay_s)
    return len(runs)
