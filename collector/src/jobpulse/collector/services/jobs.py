"""The job service: job runs as a principal may see them, their pages and series, tags, search, and the
REST lifecycle (job start/stop, admin refresh) through the same record functions as every other source;
a REST start or stop, once stored, is published on the event bus (JobStarted, JobEnded; source ``api``).

Built once per app from the store (``app.state.jobs``); every method takes the calling
:class:`~jobpulse.collector.domain.principals.Principal` where access matters, raises domain errors
(NotFound for a job the caller may not see, exactly as for a missing one), and reads or writes only
through the store's named methods (store/base.py ``JobStore``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from jobpulse.collector import metric_catalog
from jobpulse.collector.domain.errors import InvalidInput, NotFound, Unavailable
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.jobs import JobFacts, JobListing, JobQuery
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.domain.runs import RunScope
from jobpulse.collector.schemas import Configuration, MetricConfig, MetricData
from jobpulse.collector.services import access, series
from jobpulse.collector.services.events import EventBus, JobEnded, JobStarted
from jobpulse.collector.services.jobcache import JobDataCache
from jobpulse.collector.slurm import cli as slurm
from jobpulse.collector.store.base import JobStore
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS

INT64 = 2**63 - 1  # SQLite's INTEGER range
NOBODY = "\0nobody"  # a user name no job has: a user asking for another user's jobs sees none


@dataclass
class JobPage:
    """Everything the job page shows of one run (GET /api/job/{id})."""

    run: dict[str, Any]
    tags: list[dict[str, Any]]
    metric_data: list[MetricData]
    interval: float  # of metric_data; 0.0 for raw samples
    intervals: list[float]  # the intervals offered
    summary: dict[str, Any] | None
    findings: list[dict[str, Any]]
    steps: list[dict[str, Any]]


class JobService:
    def __init__(
        self, store: JobStore, tick: float, cache: JobDataCache | None = None, bus: EventBus | None = None
    ) -> None:
        self.store = store
        self.tick = tick  # the agents' default sample interval, seconds
        self.cache = cache if cache is not None else JobDataCache()
        self.bus = bus  # where the REST job start and stop are published (JobStarted, JobEnded)

    def invalidate_jobs(self, job_ids: Iterable[int]) -> None:
        """New samples of these job numbers arrived: their cached pages are stale."""
        self.cache.invalidate_jobs(job_ids)

    # -- resolving a job reference ---------------------------------------------------------------
    async def get_job(self, principal: Principal, ref: int | JobId) -> dict[str, Any]:
        """The newest run ``ref`` names, if ``principal`` may read it (NotFound otherwise)."""
        if isinstance(ref, int) and not 0 < ref <= INT64:
            row = None
        else:
            row = await self.store.get_job(ref)
        return access.readable_job(principal, row, ref)

    async def get_run(
        self, principal: Principal, ref: int | JobId, nodes: list[str] | None = None
    ) -> tuple[dict[str, Any], RunScope]:
        """The run ``ref`` names (if ``principal`` may read it) and the samples that are its own, on
        ``nodes`` only when given."""
        row = await self.get_job(principal, ref)
        scope = await self.store.run_scope(row)
        return row, scope.only(nodes)

    async def _catalog(self) -> list[MetricConfig]:
        """The metric catalogue: stored edits over the defaults (metric_catalog's rules)."""
        return metric_catalog.metrics_of(await self.store.stored_config(), series.interval_label(self.tick))

    # -- the job list ----------------------------------------------------------------------------
    async def list_jobs(self, principal: Principal, query: JobQuery) -> tuple[JobListing, Configuration]:
        """One page of the runs matching ``query`` that ``principal`` may see (users: their own), and
        the configuration the list shows with it."""
        own = access.visible_user(principal)
        if own is not None:
            query.user = own if query.user in (None, own) else NOBODY
        listing = await self.store.job_list(query, own)
        config = metric_catalog.configuration_of(
            await self.store.stored_config(), series.interval_label(self.tick)
        )
        return listing, config

    # -- one job's page, its samples and one metric ----------------------------------------------
    async def job_page(
        self,
        principal: Principal,
        ref: int | JobId,
        nodes: list[str] | None = None,
        raw: bool = False,
        interval: float | None = None,
        step: str = "",
    ) -> JobPage:
        """The run's metadata, every catalogue metric at ``interval`` (default: about 200 points) or every
        sample (``raw``), tags, summary, findings and steps. A finished run's series are cached."""
        row, scope = await self.get_run(principal, ref, nodes)
        cache = self.cache
        finished = not row["is_running"] and not raw
        sampling_key = ("sampling", row["run_id"], row["stop_time"])
        measured = cache.get(sampling_key) if finished else None
        if measured is None:
            measured = (await self.store.sampling(scope))[0] or self.tick
            if finished:
                cache.put(sampling_key, scope.job_id, measured)
        intervals, default = series.sample_intervals(row, cast(float, measured))
        chosen = interval or default
        catalog = await self._catalog()
        key = (
            row["run_id"],
            row["stop_time"],
            chosen,
            tuple(nodes or ()),
            step,
            msgspec.json.encode(catalog),
        )
        metric_data = cast(list[MetricData] | None, cache.get(key) if finished else None)
        if metric_data is None:
            metric_data = await series.metric_data(self.store, scope, catalog, chosen, raw, step)
            if finished:
                cache.put(key, scope.job_id, metric_data)
        tags, stored, steps = await asyncio.gather(
            self.store.job_tags(row["run_id"]),
            self.store.job_summary(row["run_id"]),
            self.store.step_summaries(scope),
        )
        findings: list[dict[str, Any]] = stored.pop("findings", []) if stored else []
        return JobPage(
            run=row,
            tags=tags,
            metric_data=metric_data,
            interval=0.0 if raw else chosen,
            intervals=intervals,
            summary=stored,
            findings=findings,
            steps=steps,
        )

    async def job_csv(
        self, principal: Principal, ref: int | JobId, nodes: list[str] | None = None, step: str = ""
    ) -> str:
        """Every sample of the run (or one step) as CSV: one row per node and time, a column per metric."""
        _, scope = await self.get_run(principal, ref, nodes)
        return series.samples_csv(await self.store.run_samples(scope, step), JOB_SAMPLE_COLUMNS)

    async def metric(
        self,
        principal: Principal,
        ref: int | JobId,
        guid: str,
        agg_fn: str | None = None,
        interval: float | None = None,
        nodes: list[str] | None = None,
    ) -> tuple[MetricConfig, dict[str, list[tuple[float, float]]]]:
        """One catalogue metric of the run per node, aggregated with ``agg_fn`` (default: the metric's)
        at ``interval`` (default: the job page's); the catalogue entry as shown (with that AggFn)."""
        row, scope = await self.get_run(principal, ref, nodes)
        catalog = await self._catalog()
        config = next((m for m in catalog if guid == m.GUID), None)
        if config is None:
            raise InvalidInput("metric", f"unknown metric GUID {guid!r}; see GET /api/config")
        fn = metric_catalog.normalise_agg(agg_fn if agg_fn is not None else config.AggFn)
        if fn is None:
            raise InvalidInput("aggFn", f"{agg_fn!r} is not one of mean (avg), min, max, sum")
        if interval is None:
            measured, _ = await self.store.sampling(scope)
            interval = series.sample_intervals(row, measured or self.tick)[1]
        per_node = (await self.store.series_points(scope, [config.Measurement], interval, fn))[
            config.Measurement
        ]
        fields = {f: getattr(config, f) for f in config.__struct_fields__}
        return MetricConfig(**{**fields, "AggFn": fn}), per_node

    # -- search ----------------------------------------------------------------------------------
    async def search(self, principal: Principal, term: str) -> str:
        """``job:<number>`` when ``term`` names a job the principal may see, ``user:<name>`` when it names
        a user it may see (users: itself; admins: anyone with jobs); NotFound otherwise."""
        term = term.strip()
        try:
            ident: JobId | None = JobId.parse(term)
        except ValueError:
            ident = None  # not a job id: perhaps a user name
        if ident is not None:
            job = await self.store.get_job(ident)
            if job is not None and access.may_read(principal, job):
                return f"job:{job['job_id']}"
        own = access.visible_user(principal)
        if own is None:
            if term in await self.store.users_with_jobs(term, limit=1000):
                return f"user:{term}"
        elif term == own:
            return f"user:{term}"
        raise NotFound(f"no job or user matches {term!r}")

    async def users_with_jobs(self, contains: str) -> list[str]:
        """Usernames containing ``contains`` among users with at least one job (the admin's search)."""
        return await self.store.users_with_jobs(contains)

    # -- tags ------------------------------------------------------------------------------------
    async def add_tag(self, principal: Principal, ref: int | JobId, name: str, type: str) -> dict[str, Any]:
        """Tag the run. As JobMon: the tag's type is the tagger's role (``finding`` stays), CreatedBy the
        tagger."""
        row = await self.get_job(principal, ref)
        kind = type if type == "finding" else "admin" if principal.is_admin else "user"
        try:
            return await self.store.add_tag(row["run_id"], name, kind, principal.username)
        except ValueError as exc:
            raise InvalidInput("Name", str(exc)) from None

    async def remove_tag(self, principal: Principal, ref: int | JobId, name: str) -> None:
        row = await self.get_job(principal, ref)
        if not await self.store.remove_tag(row["run_id"], name):
            raise NotFound(f"job {ref} has no tag {name!r}")

    # -- lifecycle from REST (the Slurm hooks' job_start/job_stop, an admin's refresh) ------------
    async def start_job(
        self,
        cluster: str | None,
        job_id: int,
        start: int,
        facts: JobFacts,
        stop: int = 0,
        exit_code: int | None = None,
    ) -> dict[str, Any]:
        """A run started (and, with ``stop``, ended): recorded as source ``api``, then published as
        JobStarted (and JobEnded); the stored run."""
        ended = (stop, _state(exit_code), exit_code) if stop else None
        row = await self.store.record_start(cluster, job_id, start, facts, "api", stop=ended)
        if self.bus is not None:
            self.bus.publish(JobStarted(job_id, "", float(start), "api"))
            if ended is not None:
                self.bus.publish(JobEnded(job_id, "", ended[1], float(stop), "api"))
        return row

    async def stop_job(self, job_id: int, stop: int, exit_code: int | None) -> dict[str, Any]:
        """The newest run of ``job_id`` ended, in whatever cluster: recorded as source ``api``, then
        published as JobEnded."""
        state = _state(exit_code)
        row = await self.store.record_stop(None, job_id, stop, state, exit_code, "api")
        if self.bus is not None:
            self.bus.publish(JobEnded(job_id, "", state, float(stop), "api"))
        return row

    async def refresh_job(self, job_id: int) -> dict[str, Any]:
        """Re-read the job from Slurm and make Slurm's word final; Unavailable when Slurm cannot be asked."""
        try:
            found = await asyncio.to_thread(slurm.job, job_id)
        except slurm.SlurmUnavailable as exc:
            raise Unavailable(
                f"cannot refresh job {job_id}: {exc}; install the Slurm client on the collector host"
            ) from exc
        except slurm.SlurmError as exc:
            raise Unavailable(f"Slurm: {exc}") from exc
        if found is None:
            raise NotFound(f"Slurm does not know job {job_id}")
        return await self.store.apply_slurm_job(found, "refresh", overwrite=True)


def _state(exit_code: int | None) -> str:
    return "COMPLETED" if not exit_code else "FAILED"
