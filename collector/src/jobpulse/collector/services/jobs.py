"""The job service: job runs as a principal may see them, their pages and series, tags, search, and the
REST lifecycle (job start/stop, admin refresh) through the same record functions as every other source;
a REST start or stop, once stored, is published on the event bus (JobStarted, JobEnded; source ``api``),
and so is what an admin's refresh changed (source ``refresh``).

Built once per app from the store (``app.state.jobs``); every method takes the calling
:class:`~jobpulse.collector.domain.principals.Principal` where access matters, raises domain errors
(NotFound for a job the caller may not see, exactly as for a missing one), and reads or writes only
through the store's named methods (store/base.py ``JobStore``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from jobpulse.collector import metric_catalog
from jobpulse.collector.domain.errors import Conflict, InvalidInput, NotFound, Unavailable
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.jobs import JobFacts, JobListing, JobQuery
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.domain.runs import JobRun, RunScope
from jobpulse.collector.domain.summaries import StoredSummary
from jobpulse.collector.domain.tags import Tag
from jobpulse.collector.schemas import Configuration, MetricConfig, MetricData, QuantileData
from jobpulse.collector.services import access, series
from jobpulse.collector.services.events import EventBus, JobEnded, JobStarted, publish_run_change
from jobpulse.collector.services.jobcache import JobDataCache
from jobpulse.collector.services.page_series import PageSeries
from jobpulse.collector.slurm import cli as slurm
from jobpulse.collector.slurm import parse
from jobpulse.collector.store.base import JobStore
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS

INT64 = 2**63 - 1  # SQLite's INTEGER range
NOBODY = "\0nobody"  # a user name no job has: a user asking for another user's jobs sees none
LIVE_WINDOW_S = 3600  # as JobMon: a running job's page charts its last hour; older data on request
SEARCH_LIMIT = 100  # results of a job search
SUMMARY_FIGURES_KEPT = 5000  # runs whose radar figures the job list keeps in memory

SummaryFigures = dict[str, dict[str, float | None]]  # measurement -> {"mean", "max", "limit"}


@dataclass(frozen=True)
class MetricFigures:
    """One metric of a finished run as its summary has it (JobMon's JobMetadata.Data: the radar chart).

    ``config`` is the catalogue entry; where the entry has no MaxPerNode and the run had a bound per node
    (its CPUs, its memory limit, 100 % of a GPU), MaxPerNode is that bound, so that the chart shows the
    share of what the job was given rather than 1.
    """

    config: MetricConfig
    mean: float
    max: float


@dataclass
class JobList:
    """One page of the job list (GET /api/jobs): the runs, the configuration shown with them, and the
    summary figures of the radar chart's metrics per finished run that has a summary."""

    listing: JobListing
    config: Configuration
    figures: dict[int, list[MetricFigures]]


@dataclass
class JobPage:
    """Everything the job page shows of one run (GET /api/job/{id})."""

    run: JobRun
    tags: list[Tag]
    series: PageSeries  # the charted points; JobMon's shapes of them are built when asked
    interval: float  # of the series; 0.0 for raw samples
    intervals: list[float]  # the intervals offered
    summary: StoredSummary | None
    steps: list[dict[str, Any]]
    figures: list[MetricFigures] | None = None  # from the summary; None until the run has one
    stop_time: int = 0  # as shown: the end, or now while the run is running

    @property
    def metric_data(self) -> list[MetricData]:
        """JobMon's MetricData of the series (built once per cached series)."""
        return self.series.metric_data()

    @property
    def quantile_data(self) -> list[QuantileData]:
        """JobMon's QuantileData: quantiles across nodes at each step (finished runs only)."""
        return self.series.quantile_data()


class JobService:
    def __init__(
        self, store: JobStore, tick: float, cache: JobDataCache | None = None, bus: EventBus | None = None
    ) -> None:
        self.store = store
        self.tick = tick  # the agents' default sample interval, seconds
        self.cache = cache if cache is not None else JobDataCache()
        # (run, measurements) -> the summary's figures of them: a stored summary is never rewritten (the
        # summary pass takes only runs without one), so they are read once; the newest runs are kept
        self._summary_figures: OrderedDict[tuple[int, tuple[str, ...]], SummaryFigures] = OrderedDict()
        self.bus = bus  # where the REST job start and stop are published (JobStarted, JobEnded)

    def invalidate_jobs(self, job_ids: Iterable[int]) -> None:
        """New samples of these job numbers arrived: their cached pages are stale."""
        self.cache.invalidate_jobs(job_ids)

    # -- resolving a job reference ---------------------------------------------------------------
    async def get_job(self, principal: Principal, ref: int | JobId) -> JobRun:
        """The newest run ``ref`` names, if ``principal`` may read it (NotFound otherwise)."""
        if isinstance(ref, int) and not 0 < ref <= INT64:
            row = None
        else:
            row = await self.store.get_job(ref)
        return access.readable_job(principal, row, ref)

    async def get_run(
        self, principal: Principal, ref: int | JobId, nodes: list[str] | None = None
    ) -> tuple[JobRun, RunScope]:
        """The run ``ref`` names (if ``principal`` may read it) and the samples that are its own, on
        ``nodes`` only when given."""
        row = await self.get_job(principal, ref)
        scope = await self.store.run_scope(row)
        return row, scope.only(nodes)

    async def metric_catalog(self) -> list[MetricConfig]:
        """The metric catalogue as the job routes show it: stored edits over the defaults
        (metric_catalog's rules)."""
        return metric_catalog.metrics_of(await self.store.stored_config(), series.interval_label(self.tick))

    # -- the job list ----------------------------------------------------------------------------
    async def list_jobs(self, principal: Principal, query: JobQuery) -> JobList:
        """One page of the runs matching ``query`` that ``principal`` may see (users: their own), the
        configuration the list shows with it, and the radar chart's figures of each finished run that
        has a summary (read for the whole page at once)."""
        own = access.visible_user(principal)
        if own is not None:
            query.user = own if query.user in (None, own) else NOBODY
        listing, stored_config = await asyncio.gather(
            self.store.job_list(query, own), self.store.stored_config()
        )
        config = metric_catalog.configuration_of(stored_config, series.interval_label(self.tick))
        by_guid = {m.GUID: m for m in config.Metrics}
        radar = [by_guid[guid] for guid in config.RadarChartMetrics if guid in by_guid]
        finished = [r.run_id for r in listing.rows if not r.is_running]
        stored = await self._figures_of(finished, tuple(sorted({m.Measurement for m in radar})))
        shown: dict[tuple[str, float], MetricConfig] = {}  # one bounded entry per metric and bound
        figures = {
            run_id: found for run_id, f in stored.items() if (found := metric_figures(radar, f, shown))
        }
        return JobList(listing, config, figures)

    async def _figures_of(
        self, run_ids: list[int], measurements: tuple[str, ...]
    ) -> dict[int, SummaryFigures]:
        """The summary figures of ``measurements`` of those runs that have a summary: from memory, and
        in one store read for the runs not seen yet (a run without a summary is asked again next time)."""
        known = self._summary_figures
        found: dict[int, SummaryFigures] = {}
        missing = []
        for run_id in run_ids:
            hit = known.get((run_id, measurements))
            if hit is None:
                missing.append(run_id)
            else:
                known.move_to_end((run_id, measurements))
                found[run_id] = hit
        if missing:
            for run_id, figures in (await self.store.metric_summaries(missing, measurements)).items():
                known[(run_id, measurements)] = found[run_id] = figures
            while len(known) > SUMMARY_FIGURES_KEPT:
                known.popitem(last=False)
        return found

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
        sample (``raw``), the quantiles across nodes of each (finished runs), tags, summary (and the
        figures of each metric in it), findings and steps. A finished run's series are cached.

        A running run is charted as JobMon's page expects it: its last LIVE_WINDOW_S seconds (the page
        asks for older data over the live WebSocket), every node present in each metric's data (the page
        appends the pushed samples to them), and now as its stop time.
        """
        row, scope = await self.get_run(principal, ref, nodes)
        cache = self.cache
        running = bool(row.is_running)
        finished = not running and not raw
        now = time.time()
        sampling_key = ("sampling", row.run_id, row.stop_time)
        measured = cast(float | None, cache.get(sampling_key) if finished else None)
        # Measuring the tick scans the run's samples (SQL, which runs without the GIL): it starts first, and
        # the series are read meanwhile at the interval the agents' configured tick gives, which the
        # measured tick almost always gives as well; where it does not, they are read again at that one.
        measuring = None if measured is not None else asyncio.ensure_future(self.store.sampling(scope))
        catalog = await self.metric_catalog()
        shown = scope.within(int((now - LIVE_WINDOW_S) * 1000)) if running and not raw else scope
        quantiles = () if running else metric_catalog.METRIC_QUANTILES
        catalog_key = msgspec.json.encode(catalog)

        async def chart(at: float) -> PageSeries:
            key = (row.run_id, row.stop_time, at, tuple(nodes or ()), step, catalog_key)
            found = cast(PageSeries | None, cache.get(key) if finished else None)
            if found is None:
                found = await series.metric_data(self.store, shown, catalog, at, raw, step, quantiles)
                if finished:
                    cache.put(key, scope.job_id, found)
            return found

        if measuring is None:
            intervals, default = series.sample_intervals(row, cast(float, measured))
            chosen = interval or default
            charted = await chart(chosen)
        else:
            guess = interval or series.sample_intervals(row, self.tick)[1]
            sampled, charted = await asyncio.gather(measuring, chart(guess))
            measured = sampled[0] or self.tick
            if finished:
                cache.put(sampling_key, scope.job_id, measured)
            intervals, default = series.sample_intervals(row, measured)
            chosen = interval or default
            if chosen != guess and not raw:  # every sample (raw) is the same at any interval
                charted = await chart(chosen)
        if running and not raw:
            charted = charted.with_every_node(_every_node(row, scope))
        tags, stored, steps = await asyncio.gather(
            self.store.job_tags(row.run_id),
            self.store.job_summary(row.run_id),
            self.store.step_summaries(scope),
        )
        figures = metric_figures(catalog, stored.metrics) if stored else []
        return JobPage(
            run=row,
            tags=tags,
            series=charted,
            interval=0.0 if raw else chosen,
            intervals=intervals,
            summary=stored,
            steps=steps,
            figures=figures or None,
            stop_time=int(now) if running else int(row.stop_time or 0),
        )

    async def live_window(
        self, principal: Principal, ref: int | JobId, start: float, stop: float
    ) -> list[MetricData]:
        """Every catalogue metric of the run from ``start`` to before ``stop`` (seconds), at the job page's
        default interval and ending at a whole interval, so that the points continue the page's own:
        what JobMon's live page loads when its user widens the time window of a running job."""
        row, scope = await self.get_run(principal, ref)
        measured = (await self.store.sampling(scope))[0] or self.tick
        interval = series.sample_intervals(row, measured)[1]
        end = math.floor(stop / interval) * interval
        if end <= start:
            return []
        catalog = await self.metric_catalog()
        window = scope.within(int(start * 1000), int(end * 1000))
        return (await series.metric_data(self.store, window, catalog, interval, raw=False)).metric_data()

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
        at ``interval`` (default: the job page's); the catalogue entry as shown (with that AggFn). A
        running run's series cover what its job page charts (see :meth:`job_page`)."""
        row, scope = await self.get_run(principal, ref, nodes)
        catalog = await self.metric_catalog()
        config = next((m for m in catalog if guid == m.GUID), None)
        if config is None:
            raise InvalidInput("metric", f"unknown metric GUID {guid!r}; see GET /api/config")
        fn = metric_catalog.normalise_agg(agg_fn if agg_fn is not None else config.AggFn)
        if fn is None:
            raise InvalidInput("aggFn", f"{agg_fn!r} is not one of mean (avg), min, max, sum")
        if interval is None:
            measured, _ = await self.store.sampling(scope)
            interval = series.sample_intervals(row, measured or self.tick)[1]
        running = bool(row.is_running)
        shown = scope.within(int((time.time() - LIVE_WINDOW_S) * 1000)) if running else scope
        per_node = (await self.store.series_points(shown, [config.Measurement], interval, fn))[
            config.Measurement
        ]
        if running and per_node:  # as the job page: the live page appends pushed samples to every node
            per_node = {**{n: [] for n in _every_node(row, scope)}, **per_node}
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
                return f"job:{job.job_id}"
        own = access.visible_user(principal)
        if own is None:
            if term in await self.store.users_with_jobs(term, limit=1000):
                return f"user:{term}"
        elif term == own:
            return f"user:{term}"
        raise NotFound(f"no job or user matches {term!r}")

    async def search_jobs(self, principal: Principal, term: str) -> tuple[list[JobRun], dict[int, list[Tag]]]:
        """The newest runs (at most SEARCH_LIMIT) whose job number, user, job name or account contains
        ``term``, among those ``principal`` may see (users: their own); each run's tags."""
        found = await self.store.search_jobs(term.strip(), access.visible_user(principal), SEARCH_LIMIT)
        return found.rows, found.tags_by_run

    async def search_tags(self, principal: Principal, term: str) -> list[Tag]:
        """Tags whose name contains ``term``, among those on jobs ``principal`` may see."""
        return await self.store.search_tags(term.strip(), access.visible_user(principal))

    async def users_with_jobs(self, contains: str) -> list[str]:
        """Usernames containing ``contains`` among users with at least one job (the admin's search)."""
        return await self.store.users_with_jobs(contains)

    # -- tags ------------------------------------------------------------------------------------
    async def add_tag(self, principal: Principal, ref: int | JobId, name: str, type: str) -> Tag:
        """Tag the run. As JobMon: the tag's type is the tagger's role (``finding`` stays), CreatedBy the
        tagger."""
        row = await self.get_job(principal, ref)
        kind = type if type == "finding" else "admin" if principal.is_admin else "user"
        try:
            return await self.store.add_tag(row.run_id, name, kind, principal.username)
        except ValueError as exc:
            raise InvalidInput("Name", str(exc)) from None

    async def remove_tag(self, principal: Principal, ref: int | JobId, name: str) -> None:
        row = await self.get_job(principal, ref)
        if not await self.store.remove_tag(row.run_id, name):
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
    ) -> JobRun:
        """A run started (and, with ``stop``, ended): recorded as source ``api``, then published as
        JobStarted (and JobEnded); the stored run."""
        ended = (stop, _state(exit_code), exit_code) if stop else None
        row = await self.store.record_start(cluster, job_id, start, facts, "api", stop=ended)
        if self.bus is not None:
            self.bus.publish(JobStarted(job_id, "", float(start), "api"))
            if ended is not None:
                self.bus.publish(JobEnded(job_id, "", ended[1], float(stop), "api"))
        return _recorded(row, job_id)

    async def stop_job(self, job_id: int, stop: int, status: int | None) -> JobRun:
        """The newest run of ``job_id`` ended, in whatever cluster: recorded as source ``api``, then
        published as JobEnded. ``status``: Slurm's wait status, as JobMon's EpilogSlurmctld script sends
        it (see :func:`stop_status`)."""
        exit_code, exit_signal, state = stop_status(status)
        row = await self.store.record_stop(None, job_id, stop, state, exit_code, "api", exit_signal)
        if self.bus is not None:
            self.bus.publish(JobEnded(job_id, "", state, float(stop), "api"))
        return _recorded(row, job_id)

    async def refresh_job(self, job_id: int) -> JobRun:
        """Re-read the job from Slurm and make Slurm's word final; the stored run. Unavailable when Slurm
        cannot be asked.

        What the refresh changed is published as the reconciler's changes are (source ``refresh``):
        JobStarted for a run no source had reported, JobEnded for a run it ended. The job's cached pages
        are dropped, since Slurm's word may change what they show (its nodes, its end).
        """
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
        change = await self.store.apply_slurm_job(found, "refresh", overwrite=True)
        self.invalidate_jobs([job_id, *([change.run.job_id] if change.run else [])])
        if self.bus is not None and change.run:
            publish_run_change(self.bus, change, "refresh")
        return _recorded(change.run, job_id)


def metric_figures(
    catalog: Iterable[MetricConfig],
    stored: Mapping[str, Mapping[str, float | None]],
    shown: dict[tuple[str, float], MetricConfig] | None = None,
) -> list[MetricFigures]:
    """The catalogue's metrics that a summary has figures of (``stored``: its ``metrics``), in catalogue
    order; MaxPerNode from the run's bound where the entry has none (see :class:`MetricFigures`).
    ``shown`` keeps the bounded entries made for the runs of one page (most runs share their bounds)."""
    out = []
    memo = shown if shown is not None else {}
    for metric in catalog:
        found = stored.get(metric.Measurement) or {}
        mean, high, limit = found.get("mean"), found.get("max"), found.get("limit")
        if mean is None or high is None:
            continue
        config = metric
        if limit and not metric.MaxPerNode:
            config = memo.get((metric.GUID, limit)) or memo.setdefault(
                (metric.GUID, limit), msgspec.structs.replace(metric, MaxPerNode=limit)
            )
        out.append(MetricFigures(config, mean, high))
    return out


def _every_node(row: JobRun, scope: RunScope) -> list[str]:
    """Every node of the run, whichever a caller narrowed the series to: the live page appends a pushed
    sample to its node's series whatever node it shows (JobMon ignores a node selection while a job runs)."""
    listed = list(row.nodes)
    return [*listed, *(n for n in scope.nodes if n not in listed)]


def _recorded(run: JobRun | None, job_id: int) -> JobRun:
    """The run a write stored; a write that stored none (a stop older than the run it names, whose start
    another run already holds) is a conflict the caller is told about, never an empty success."""
    if run is None:
        raise Conflict(f"job {job_id}: no run was recorded (a run with that start already exists)")
    return run


def _state(exit_code: int | None) -> str:
    return "COMPLETED" if not exit_code else "FAILED"


# Signals that end a job when it is cancelled or runs out of time (scancel, the time limit).
_CANCEL_SIGNALS = frozenset({2, 9, 15})


def stop_status(status: int | None) -> tuple[int | None, int | None, str]:
    """(exit code, exit signal, state) of the ExitCode of ``PATCH /api/job_stop``.

    JobMon's Slurm script sends ``SLURM_JOB_EXIT_CODE`` of slurmctld's epilog, a wait status (768 is
    exit 3, 15 SIGTERM, 253 Slurm's OOM mark "0:125"), so it is read as the agent's epilog reads the
    same variable: the code, or 128 + the signal, with Slurm's "code:signal" kept apart; the OOM mark is
    no signal (state OUT_OF_MEMORY), SIGINT/SIGKILL/SIGTERM read as CANCELLED (the reconciler refines it
    from sacct: TIMEOUT ends with a signal too). A negative number (scripts send -1 for "unknown") is
    kept as it was sent, with no signal.
    """
    if status is None or status < 0:
        return status, None, _state(status)
    code, sig = parse.wait_status(status)
    if sig == parse.SLURM_OOM_MARK:
        return code, sig, "OUT_OF_MEMORY"
    if sig:
        return parse.exit_code_of(code, sig), sig, "CANCELLED" if sig in _CANCEL_SIGNALS else "FAILED"
    return code, 0, _state(code)
