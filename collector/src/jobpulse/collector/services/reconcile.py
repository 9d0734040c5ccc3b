"""The reconciler: every minute, make the jobs table agree with Slurm's own view.

Prolog/epilog hooks can be missed (agent down while its spool was lost, a node
rebooted mid-job, a hook killed by its timeout). When the collector host has
Slurm's CLI, `squeue --json` fills in running jobs we never heard of and
`sacct --json` closes jobs that ended without an epilog (with Slurm's own
state and exit code). Off when the CLI is missing; never fatal to the collector.

Slurm is asked here (on a worker thread); what it says is recorded by the store
(``JobStore.apply_slurm_jobs``, each job as store/jobs.py ``apply_slurm_job`` does
it), and a run that this created or ended is published on the event bus as
:class:`JobStarted` / :class:`JobEnded` (source ``reconciler``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from jobpulse.collector.services.events import EventBus, publish_run_change
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.slurm import cli as slurm
from jobpulse.collector.slurm.parse import SlurmJob
from jobpulse.collector.store.base import JobStore

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    seen: int = 0
    running: int = 0
    ended: int = 0
    error: str = ""


def fetch(lookback: float, now: float | None = None) -> tuple[list[SlurmJob], str]:
    """Slurm's view (blocking: runs squeue, and sacct when it works), one entry per run, oldest first."""
    now = time.time() if now is None else now
    found: dict[tuple[int, int], SlurmJob] = {}
    for job in slurm.squeue():
        if job.state not in ("PENDING", "REQUEUED", "") and job.start:
            found[(job.job_id, job.start)] = job
    error = ""
    try:
        for job in slurm.sacct(int(now - lookback)):
            if job.start and job.state not in ("PENDING", "REQUEUED"):
                seen = found.get((job.job_id, job.start))
                if seen is not None and not job.exit_code and seen.exit_code:
                    # 22.05's sacct --json reports return_code 0 for failures (its text says 3:0); squeue,
                    # while it still lists the job, has the wait status
                    job.exit_code, job.exit_signal = seen.exit_code, seen.exit_signal
                found[(job.job_id, job.start)] = job  # accounting has the final word on ended jobs
    except slurm.SlurmError as exc:
        error = str(exc)
        log.debug("reconciler: sacct unusable (%s); using squeue only", exc)
    return sorted(found.values(), key=lambda j: (j.start or 0, j.job_id)), error


async def reconcile_once(store: JobStore, lookback: float, bus: EventBus | None = None) -> Outcome:
    """One pass: Slurm is asked on a worker thread, so ingest never waits for slow Slurm commands."""
    found, error = await asyncio.to_thread(fetch, lookback)
    changes = await store.apply_slurm_jobs(found, "reconciler")
    if bus is not None:
        for change in changes:
            publish_run_change(bus, change, "reconciler")
    return Outcome(
        seen=len(found),
        running=sum(job.running for job in found),
        ended=sum(job.ended for job in found),
        error=error,
    )


async def run_forever(store: JobStore, interval: float, lookback: float, bus: EventBus | None = None) -> None:
    """The collector's reconciler task; logs and keeps going on any error.

    The first pass looks ``lookback`` back (jobs that ended while the collector was down); later passes
    only since the previous successful pass, with a margin: running jobs come from squeue anyway.
    """
    log.info("reconciler: checking Slurm every %.0fs (lookback %.0fs)", interval, lookback)
    window = lookback
    failing = ""  # the Slurm error of the last pass: logged when it starts and when it ends, not per pass
    while True:
        began = time.time()
        try:
            outcome = await reconcile_once(store, window, bus)
            log.debug("reconciler: %s", outcome)
            window = min(lookback, 3 * interval + 60)
            if failing:
                log.info("reconciler: Slurm answers again")
                failing = ""
        except slurm.SlurmUnavailable as exc:
            log.warning("reconciler: %s; stopping", exc)
            return
        except slurm.SlurmError as exc:  # slurmctld down or unreachable: expected, said once, no traceback
            if str(exc) != failing:
                log.warning("reconciler: Slurm does not answer (%s); retrying every %.0fs", exc, interval)
                failing = str(exc)
            window = min(lookback, window + (time.time() - began) + interval)
        except Exception:
            log.exception("reconciler pass failed")
            window = min(lookback, window + (time.time() - began) + interval)
        await asyncio.sleep(interval)


def enabled(mode: str) -> bool:
    """Setting ``reconcile``: "auto" (on when squeue is in PATH), "on" or "off"."""
    value = mode.strip().lower()
    if value in ("off", "false", "no", "0"):
        return False
    if value in ("on", "true", "yes", "1"):
        return True
    if value != "auto":
        log.warning("reconcile = %r is not auto, on or off: reconciler off", mode)
        return False
    return slurm.available()


def start(
    store: JobStore, settings: CollectorSettings, bus: EventBus | None = None
) -> asyncio.Task[None] | None:
    """Start the reconciler task in the running loop when the settings (and the host) allow it;
    ``bus``: where the runs it creates or ends are published."""
    if not enabled(settings.reconcile):
        log.info("reconciler off (reconcile=%s, squeue in PATH: %s)", settings.reconcile, slurm.available())
        return None
    return asyncio.create_task(
        run_forever(store, settings.reconcile_interval, settings.reconcile_lookback, bus), name="reconciler"
    )
