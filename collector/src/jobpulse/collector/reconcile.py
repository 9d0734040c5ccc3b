"""The reconciler: every minute, make the jobs table agree with Slurm's own view.

Prolog/epilog hooks can be missed (agent down while its spool was lost, a node
rebooted mid-job, a hook killed by its timeout). When the collector host has
Slurm's CLI, `squeue --json` fills in running jobs we never heard of and
`sacct --json` closes jobs that ended without an epilog (with Slurm's own
state and exit code). Off when the CLI is missing; never fatal to the collector.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from jobpulse.collector.domain.jobs import JobFacts
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.slurm import cli as slurm
from jobpulse.collector.slurm.parse import SlurmJob
from jobpulse.collector.store import jobs
from jobpulse.collector.store.sqlite import SqliteStore

log = logging.getLogger(__name__)


def slurm_facts(job: SlurmJob) -> JobFacts:
    """What Slurm's CLI says about a job, as JobFacts."""
    return JobFacts(
        user_name=job.user,
        user_id=job.uid,
        group_name=job.group,
        group_id=job.gid,
        account=job.account,
        partition=job.partition,
        qos=job.qos,
        job_name=job.name,
        nodes=(job.nodelist,) if job.nodelist else (),
        num_nodes=job.num_nodes,
        num_tasks=job.tasks,
        cpus=job.cpus,
        mem_requested_bytes=job.mem_requested_bytes,
        array_job_id=job.array_job_id,
        array_task_id=job.array_task_id,
        het_job_id=job.het_job_id,
        het_job_offset=job.het_job_offset,
    )


def apply_slurm_job(
    db: sqlite3.Connection, job: SlurmJob, source: str, overwrite: bool = False
) -> dict[str, Any]:
    """Record what Slurm says about ``job``: its run (created if missed), its metadata, its end if it ended.

    The reconciler only fills gaps (``overwrite`` False); an admin refresh makes Slurm's word final.
    """
    facts = slurm_facts(job)
    cluster = job.cluster or None
    start = job.start or int(time.time())
    run = jobs.record_start(db, cluster, job.job_id, start, facts, source)
    if job.ended:
        end = job.end or start
        jobs.record_stop(db, cluster, job.job_id, end, job.state, job.exit_code, source, start=start)
        if overwrite:
            jobs.refresh_run(db, run, facts, job.state, job.exit_code, end)
        else:
            # The epilog cannot tell a cancelled job from a finished one (22.05 gives it exit 0:0):
            # Slurm's state wins; its exit code only when it says more than "0".
            jobs.settle_run(db, run, job.state, job.exit_code)
    elif overwrite:
        jobs.refresh_run(db, run, facts)
    row = db.execute("SELECT * FROM jobs WHERE run_id = ?", (run,)).fetchone()
    return dict(row) if row is not None else {}


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
                    job.exit_code = (
                        seen.exit_code
                    )  # 22.05's sacct --json -X reports return_code 0 for failures
                found[(job.job_id, job.start)] = job  # accounting has the final word on ended jobs
    except slurm.SlurmError as exc:
        error = str(exc)
        log.debug("reconciler: sacct unusable (%s); using squeue only", exc)
    return sorted(found.values(), key=lambda j: (j.start or 0, j.job_id)), error


def apply(db: sqlite3.Connection, found: list[SlurmJob]) -> Outcome:
    outcome = Outcome()
    for job in found:
        apply_slurm_job(db, job, "reconciler")
        outcome.seen += 1
        outcome.ended += job.ended
        outcome.running += job.running
    return outcome


async def reconcile_once(store: SqliteStore, lookback: float) -> Outcome:
    """One pass: Slurm is asked on a worker thread, so ingest never waits for slow Slurm commands."""
    found, error = await asyncio.to_thread(fetch, lookback)
    outcome = await store.write(lambda db: apply(db, found))
    outcome.error = error
    return outcome


async def run_forever(store: SqliteStore, interval: float, lookback: float) -> None:
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
            outcome = await reconcile_once(store, window)
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


def start(store: SqliteStore, settings: CollectorSettings) -> asyncio.Task[None] | None:
    """Start the reconciler task in the running loop when the settings (and the host) allow it."""
    if not enabled(settings.reconcile):
        log.info("reconciler off (reconcile=%s, squeue in PATH: %s)", settings.reconcile, slurm.available())
        return None
    return asyncio.create_task(
        run_forever(store, settings.reconcile_interval, settings.reconcile_lookback), name="reconciler"
    )
