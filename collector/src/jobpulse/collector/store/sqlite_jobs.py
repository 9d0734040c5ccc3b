"""The job section of the storage protocol (store/base.py ``JobStore``) for SQLite.

A mixin of :class:`~jobpulse.collector.store.sqlite.SqliteStore`: each method is one read (on a reader
connection) or one write (on the writer thread), and a method that runs several statements runs them
in one transaction. The SQL itself stays in the modules per concern (jobs.py, series.py, tags.py, ...);
this class names the operations the job service needs and runs them on the right thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from jobpulse.collector.domain.jobs import JobFacts, JobListing, JobQuery, RunChange
from jobpulse.collector.domain.runs import JobRun, RunScope
from jobpulse.collector.domain.summaries import StoredSummary
from jobpulse.collector.domain.tags import Tag
from jobpulse.collector.store import jobs, samples, series, steps, tags
from jobpulse.collector.store.summaries import load_summary

if TYPE_CHECKING:
    from jobpulse.collector.slurm.parse import SlurmJob

T = TypeVar("T")


def _transaction(fn: Callable[[sqlite3.Connection], T], immediate: bool) -> Callable[[sqlite3.Connection], T]:
    """``fn`` run between BEGIN and COMMIT (rolled back when it fails), so its statements see and leave
    one state of the database."""

    def run(db: sqlite3.Connection) -> T:
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            result = fn(db)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    return run


def _row(db: sqlite3.Connection, run_id: int) -> JobRun | None:
    row = db.execute("SELECT * FROM jobs WHERE run_id = ?", (run_id,)).fetchone()
    return jobs.run_of(row) if row is not None else None


class SqliteJobs:
    """Job runs, their samples and series, tags and summaries (see ``JobStore``)."""

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    # -- the job list and search -----------------------------------------------------------------
    async def job_list(self, query: JobQuery, tags_of: str | None) -> JobListing:
        def run(db: sqlite3.Connection) -> JobListing:
            rows, total = jobs.query_jobs(db, query)
            return JobListing(
                rows=rows,
                total=total,
                tags_by_run=tags.tags_of_runs(db, [r.run_id for r in rows]),
                tags_in_use=tags.all_tags(db, tags_of),
            )

        return await self._read(_transaction(run, immediate=False))

    async def users_with_jobs(self, contains: str, limit: int = 100) -> list[str]:
        return await self._read(lambda db: jobs.users_with_jobs(db, contains, limit=limit))

    async def search_jobs(self, contains: str, user: str | None, limit: int = 100) -> JobListing:
        def run(db: sqlite3.Connection) -> JobListing:
            rows = jobs.search_jobs(db, contains, user, limit)
            tagged = tags.tags_of_runs(db, [r.run_id for r in rows])
            return JobListing(rows=rows, total=len(rows), tags_by_run=tagged, tags_in_use=[])

        return await self._read(_transaction(run, immediate=False))

    async def search_tags(self, contains: str, user: str | None) -> list[Tag]:
        return await self._read(lambda db: tags.search_tags(db, jobs.like_pattern(contains), user))

    async def metric_summaries(
        self, run_ids: Sequence[int], measurements: Sequence[str]
    ) -> dict[int, dict[str, dict[str, float | None]]]:
        return await self._read(lambda db: _metric_summaries(db, run_ids, measurements))

    # -- one run: tags, summary, steps, samples, series ------------------------------------------
    async def job_tags(self, run_id: int) -> list[Tag]:
        return await self._read(lambda db: tags.job_tags(db, run_id))

    async def job_summary(self, run_id: int) -> StoredSummary | None:
        return await self._read(lambda db: load_summary(db, run_id))

    async def step_summaries(self, scope: RunScope) -> list[dict[str, Any]]:
        return await self._read(lambda db: steps.step_summaries(db, scope))

    async def sampling(self, scope: RunScope) -> tuple[float | None, int]:
        return await self._read(lambda db: series.sampling(db, scope))

    async def run_samples(self, scope: RunScope, step: str = "") -> list[dict[str, Any]]:
        def run(db: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = samples.job_samples(db, scope.job_id, scope.start_ms, scope.end_ms, step)
            return [r for r in rows if r["node"] in scope.nodes]

        return await self._read(run)

    async def series_points(
        self, scope: RunScope, metrics: Sequence[str], interval: float, agg_fn: str, step: str = ""
    ) -> series.Points:
        return await self._read(
            lambda db: series.job_series_points(db, scope, metrics, interval, agg_fn, step=step)
        )

    # -- tags ------------------------------------------------------------------------------------
    async def add_tag(self, run_id: int, name: str, type: str, created_by: str) -> Tag:
        return await self._write(lambda db: tags.add_tag(db, run_id, name, type, created_by))

    async def remove_tag(self, run_id: int, name: str) -> bool:
        return await self._write(lambda db: tags.remove_tag(db, run_id, name))

    # -- lifecycle (the same functions the agents' events and the reconciler go through) --------
    async def record_start(
        self,
        cluster: str | None,
        job_id: int,
        start: int,
        facts: JobFacts,
        source: str,
        stop: tuple[int, str, int | None] | None = None,
    ) -> JobRun | None:
        """A run started (and ended, with ``stop`` = (time, state, exit code)); the stored run."""

        def run(db: sqlite3.Connection) -> JobRun | None:
            run_id = jobs.record_start(db, cluster, job_id, start, facts, source)
            if stop is not None:
                jobs.record_stop(db, cluster, job_id, stop[0], stop[1], stop[2], source)
            return _row(db, run_id)

        return await self._write(_transaction(run, immediate=True))

    async def record_stop(
        self,
        cluster: str | None,
        job_id: int,
        stop: int,
        state: str,
        exit_code: int | None,
        source: str,
        exit_signal: int | None = None,
    ) -> JobRun | None:
        """The newest run of ``job_id`` ended; the stored run. ``exit_signal``: with ``exit_code``,
        Slurm's "code:signal" (None: not known)."""

        def run(db: sqlite3.Connection) -> JobRun | None:
            return _row(
                db,
                jobs.record_stop(
                    db, cluster, job_id, stop, state, exit_code, source, exit_signal=exit_signal
                ),
            )

        return await self._write(_transaction(run, immediate=True))

    async def apply_slurm_job(self, job: SlurmJob, source: str, overwrite: bool = False) -> RunChange:
        """What Slurm says about ``job``, recorded as the reconciler records it; what that did to the run."""
        return await self._write(
            _transaction(
                lambda db: jobs.apply_slurm_job(db, job, source, overwrite=overwrite), immediate=True
            )
        )

    async def apply_slurm_jobs(self, found: Sequence[SlurmJob], source: str) -> list[RunChange]:
        """Slurm's view of many jobs, in one call on the writer, each job in its own transaction."""

        def run(db: sqlite3.Connection) -> list[RunChange]:
            changes = []
            for job in found:
                db.execute("BEGIN IMMEDIATE")
                try:
                    changes.append(jobs.apply_slurm_job(db, job, source))
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            return changes

        return await self._write(run)


def _metric_summaries(
    db: sqlite3.Connection, run_ids: Sequence[int], measurements: Sequence[str]
) -> dict[int, dict[str, dict[str, float | None]]]:
    """The summary figures of ``measurements`` of the runs that have a summary, in one query; only those
    parts of each stored summary are extracted (the job list shows them for up to 10 000 runs)."""
    if not run_ids or not measurements:
        return {}
    picked = ", ".join("?, summary -> ?" for _ in measurements)
    paths = [p for m in measurements for p in (m, f'$.metrics."{m}"')]
    marks = ", ".join("?" for _ in run_ids)
    rows = db.execute(
        f"SELECT run_id, json_object({picked}) FROM job_summaries WHERE run_id IN ({marks})",
        [*paths, *run_ids],
    )
    out: dict[int, dict[str, dict[str, float | None]]] = {}
    for run_id, figures in rows:
        found = {m: f for m, f in json.loads(figures).items() if f}
        if found:
            out[int(run_id)] = found
    return out
