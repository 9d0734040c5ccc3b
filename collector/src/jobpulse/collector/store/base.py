"""The storage protocol: named operations over domain values, each owning its transaction.

Why a protocol: SQLite is the embedded default and PostgreSQL comes next; services (and the
scheduler, the reconciler, the first-start bootstrap) are written against these methods only, never
against a connection or SQL: only store/ talks to the database (an import-linter contract keeps
sqlite3 out of every other collector module). ``SqliteStore`` (store/sqlite.py)
implements it; a method that writes runs on the single writer thread in one transaction, a method
that reads runs on a reader connection. Values are the domain types (domain/): tags, nodes, users, API
keys, summaries and findings; a job run is still its row as a dict keyed by column name.

Sections by area (jobs and series; accounts; configuration and nodes; the summary pass; the periodic
storage jobs) keep the protocol readable; ``Store`` is all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from jobpulse.collector.domain.accounts import ApiKey, AuditEntry, RoleRequest, User
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.jobs import JobFacts, JobListing, JobQuery, RunChange
from jobpulse.collector.domain.nodes import Inventory, NodeStatus
from jobpulse.collector.domain.runs import JobRun, RunScope
from jobpulse.collector.domain.summaries import StoredSummary
from jobpulse.collector.domain.tags import Tag
from jobpulse.collector.domain.usage import (
    AccountingRecord,
    Efficiency,
    UsageFilter,
    UsageGroups,
    UsageTotals,
)
from jobpulse.collector.domain.usage_view import KeyEfficiency, PeriodKeyUsage

if TYPE_CHECKING:
    from jobpulse.collector.slurm.parse import SlurmJob
    from jobpulse.collector.store.retention import RetentionResult
    from jobpulse.collector.store.rollup import RollupResult


@dataclass(frozen=True)
class StoredConfig:
    """The configuration as stored: each edited part as its decoded JSON (None: never edited, the
    defaults apply), and the partitions that jobs ran in."""

    metrics: object | None
    partitions: object | None
    seen_partitions: list[str]


class StoredConfigSource(Protocol):
    """The stored configuration, which the job routes (the catalogue beside the job list and page) and
    the configuration routes both read; what it means is metric_catalog's business."""

    async def stored_config(self) -> StoredConfig:
        """The configuration as stored."""
        ...


class JobStore(StoredConfigSource, Protocol):
    """Job runs, their samples and series, tags and summaries."""

    async def get_job(self, job_id: int | JobId) -> JobRun | None:
        """The newest run of a job number, array task or het component."""
        ...

    async def run_scope(self, run: JobRun) -> RunScope:
        """Which samples belong to ``run`` (its window and its cluster's nodes)."""
        ...

    # the job list and search
    async def job_list(self, query: JobQuery, tags_of: str | None) -> JobListing:
        """One page of runs matching ``query``, their tags, and the tags in use on ``tags_of``'s jobs
        (None: anyone's)."""
        ...

    async def users_with_jobs(self, contains: str, limit: int = 100) -> list[str]:
        """Usernames containing ``contains`` (case-insensitive, no wildcards) among users with jobs."""
        ...

    async def search_jobs(self, contains: str, user: str | None, limit: int = 100) -> JobListing:
        """The newest runs (at most ``limit``) whose job number, user, job name or account contains
        ``contains`` (case-insensitive, no wildcards), of ``user`` only when given, with their tags."""
        ...

    async def search_tags(self, contains: str, user: str | None) -> list[Tag]:
        """Tags in use (on ``user``'s jobs when given) whose name contains ``contains``, by name."""
        ...

    async def metric_summaries(
        self, run_ids: Sequence[int], measurements: Sequence[str]
    ) -> dict[int, dict[str, dict[str, float | None]]]:
        """Of the runs that have a summary: per measurement its figures (``mean``, ``max``, ``limit``)
        where the summary has them; one read for a whole page of runs."""
        ...

    # one run
    async def job_tags(self, run_id: int) -> list[Tag]:
        """The run's tags, by type then name."""
        ...

    async def job_summary(self, run_id: int) -> StoredSummary | None:
        """The run's stored summary and its findings, or None until it has one."""
        ...

    async def step_summaries(self, scope: RunScope) -> list[dict[str, Any]]:
        """Per-step figures of the run (StepSummary keys)."""
        ...

    async def sampling(self, scope: RunScope) -> tuple[float | None, int]:
        """(the measured sample interval in seconds or None, the number of whole-job samples)."""
        ...

    async def run_samples(self, scope: RunScope, step: str = "") -> list[dict[str, Any]]:
        """Every raw sample of the run (or one step) on the scope's nodes, per node in time order."""
        ...

    async def series_points(
        self, scope: RunScope, metrics: Sequence[str], interval: float, agg_fn: str, step: str = ""
    ) -> dict[str, dict[str, list[tuple[float, float]]]]:
        """``metrics`` of the run bucketed to ``interval`` seconds with ``agg_fn``: metric -> node ->
        (interval start in s, value)."""
        ...

    # tags
    async def add_tag(self, run_id: int, name: str, type: str, created_by: str) -> Tag:
        """Attach the tag (created if new) to the run; idempotent; the tag. ValueError on an empty name."""
        ...

    async def remove_tag(self, run_id: int, name: str) -> bool:
        """Detach every tag called ``name`` from the run; False if it carried none."""
        ...

    # lifecycle: every source goes through store/jobs.py record_start/record_stop
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
        ...

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
        """The newest run of ``job_id`` ended; the stored run (None: no run of it is known).
        ``exit_signal``: with ``exit_code``, Slurm's "code:signal" (None: not known)."""
        ...

    async def apply_slurm_job(self, job: SlurmJob, source: str, overwrite: bool = False) -> RunChange:
        """What Slurm says about a job (created if missed; ``overwrite``: Slurm's word is final); what
        that did to its run (the stored run, whether this created it, whether it ended it)."""
        ...

    async def apply_slurm_jobs(self, found: Sequence[SlurmJob], source: str) -> list[RunChange]:
        """What Slurm says about each job, gaps filled as the reconciler does (``apply_slurm_job``
        without overwrite), each job in its own transaction; what that did to each run, in order."""
        ...


class AccountStore(Protocol):
    """Users, sessions, API keys, role requests and the audit log.

    A method that changes something an admin or the CLI asked for writes its audit entry (naming
    ``actor``) in the same transaction, so both land or neither does. Where a rule needs the state
    inside that transaction (the last admin, an OIDC user's kept roles), the service passes the rule
    as a function, called on the writer thread; what it raises aborts the transaction unchanged.
    """

    # -- users ----------------------------------------------------------------
    async def get_user(self, username: str) -> User | None:
        """The user, or None."""
        ...

    async def count_admins(self) -> int: ...

    async def save_user(
        self,
        username: str,
        roles: list[str],
        password_hash: str | None,
        actor: str,
        detail: dict[str, Any] | None = None,
    ) -> User:
        """Create a local user or update roles (and the password when a hash is given); audit "add_user"."""
        ...

    async def save_admin_at_start(self, username: str, roles: list[str], password_hash: str) -> User:
        """Create or update the admin the collector makes when it starts (auth/bootstrap.py). Not
        audited: no one acted; the configuration, or the first start, did."""
        ...

    async def upsert_external_user(
        self,
        username: str,
        source: str,
        roles_for: Callable[[list[str] | None], list[str]],
        email: str = "",
        display_name: str = "",
    ) -> User:
        """Create or refresh a user of an external login (OIDC); ``roles_for(current roles or None)``
        says the roles to store."""
        ...

    async def set_roles(
        self,
        username: str,
        roles: list[str],
        actor: str,
        check: Callable[[User | None, int], None],
    ) -> User:
        """Set a user's roles (creating the user without a password when unknown), answer their pending
        role requests, audit "set_roles" with before/after. ``check(user before, number of admins)``
        runs first in the transaction and may raise to refuse."""
        ...

    # -- sessions and ws-tickets ------------------------------------------------
    async def create_session(self, username: str, ttl_seconds: float) -> str:
        """A login session's id."""
        ...

    async def create_ws_ticket(self, username: str, ttl_seconds: float, parent: str) -> str:
        """A ws-ticket made from the login session ``parent``; it never outlives it."""
        ...

    async def session_of(self, session_id: str, username: str) -> tuple[str | None, User | None]:
        """(the live session's kind or None, the user or None), read together."""
        ...

    async def end_session(self, session_id: str) -> None:
        """End a session and every ws-ticket made from it."""
        ...

    # -- API keys ---------------------------------------------------------------
    async def create_api_key(
        self,
        owner: str,
        role: str,
        name: str,
        ttl_seconds: float | None,
        actor: str,
        detail: dict[str, Any],
    ) -> tuple[str, ApiKey]:
        """(the key, shown once; its record without the secret); audit "create_api_key" with ``detail``.

        Raises:
            InvalidInput: field "owner", when ``owner`` cannot own a ``role`` key.
        """
        ...

    async def verify_api_key(self, presented: str) -> ApiKey | None:
        """The key's record when it is valid now and its owner still holds its role; marks it used."""
        ...

    async def list_api_keys(self) -> list[ApiKey]: ...

    async def revoke_api_key(self, key_id: str, actor: str) -> bool:
        """False when unknown or already revoked; audit "revoke_api_key" otherwise."""
        ...

    # -- audit and role requests ----------------------------------------------------
    async def list_audit(self, limit: int, offset: int, actor: str | None) -> list[AuditEntry]: ...

    async def add_role_request(self, username: str, roles: list[str], client: str) -> tuple[int, bool]:
        """(request id, whether it is new: a repeat updates the pending one).

        Raises:
            Unavailable: too many requests are pending.
        """
        ...

    async def list_role_requests(self, include_resolved: bool) -> list[RoleRequest]: ...

    async def dismiss_role_request(self, request_id: int, actor: str) -> bool:
        """False when unknown or already handled; audit "dismiss_role_request" otherwise."""
        ...


class ConfigStore(StoredConfigSource, Protocol):
    """The API configuration (metric catalogue, partitions) and the nodes."""

    async def update_config(
        self, actor: str, parts: list[str], change: Callable[[StoredConfig], dict[str, str]]
    ) -> StoredConfig:
        """In one write transaction: ``change(current)`` returns the parts to store (key "metrics" or
        "partitions" -> JSON text) or raises (then nothing is written); the edit is audited as
        ``update_config`` of ``parts`` by ``actor``. Returns the configuration as stored after it."""
        ...

    async def nodes(self, down_after: float, now: float) -> list[NodeStatus]:
        """Every node heard from, by name, "down" when silent for more than ``down_after`` s at ``now``."""
        ...

    async def inventory(self, active_since: float) -> Inventory:
        """How many nodes and jobs; active nodes are those last seen after ``active_since``."""
        ...


class NodeFigures(NamedTuple):
    """One node's figures of a run, from its raw samples or its 1-minute rollups (None: not measured)."""

    node: str
    samples: int
    cpu_seconds: float | None  # the highest user + system CPU seconds (cumulative counters)
    alloc_cpus: float | None
    mem_peak_bytes: float | None
    mem_current_bytes: float | None  # the highest
    mem_limit_bytes: float | None  # the lowest finite limit
    gpu_util_mean_percent: float | None
    gpu_util_max_percent: float | None
    gpu_mem_bytes: float | None  # the highest
    io_read_bytes: float | None
    io_write_bytes: float | None
    oom_kills: float | None


class GpuFigures(NamedTuple):
    """One GPU's figures while it ran the run's job."""

    uuid: str
    node: str
    util_mean_percent: float | None
    util_max_percent: float | None
    mem_peak_bytes: float | None
    energy_joules: float | None  # the energy counter's increase; None where the GPU does not measure it


@dataclass(frozen=True)
class RunFigures:
    """What a run's summary is computed from (summary.py computes it)."""

    run: JobRun  # the stored run
    start: float  # seconds since the epoch
    stop: float  # the run's stop, or the time asked about while it runs
    source: str  # the table the node figures came from: job_samples, or job_samples_1m once raw is gone
    nodes: list[NodeFigures]
    node_names: list[str]  # the nodes with figures, or else the run's node list
    gpus: list[GpuFigures]
    gaps: list[dict[str, Any]]  # delivery gaps of those nodes in the run's window (node, from_ms, ...)
    # per job metric (JOB_SAMPLE_COLUMNS) with a value: (mean, highest) of the whole-job samples of all nodes
    metrics: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


class SummaryStore(Protocol):
    """The summary pass (services/summaries.py): which runs need a summary, their figures, the result."""

    async def runs_to_summarize(self, now: float, delay_s: float, limit: int) -> list[int]:
        """Runs that stopped at least ``delay_s`` before ``now`` and have no summary yet, oldest first."""
        ...

    async def run_figures(self, run_id: int, now: float) -> RunFigures | None:
        """What the run's summary is computed from (read on a reader: ingest does not wait); None if
        there is no such run."""
        ...

    async def save_summary(
        self, run_id: int, computed: float, summary: dict[str, Any], findings: Sequence[str]
    ) -> None:
        """Store the summary and tag the run with each finding (rule names), in one transaction."""
        ...

    async def summaries_done(self, now: float, delay_s: float) -> None:
        """Every run pending at ``now`` was summarized: later passes look only at runs after it."""
        ...


class MaintenanceStore(Protocol):
    """The periodic storage jobs; scheduler.py decides when, each runs on the single writer."""

    async def rollup(self, now_ms: int, lag_ms: int) -> RollupResult:
        """Roll raw samples up into 1-minute and 1-hour rows (store/rollup.py)."""
        ...

    async def apply_retention(
        self, now_ms: int, raw_days: float, days_1m: float, days_1h: float
    ) -> RetentionResult:
        """Delete what each resolution no longer keeps (store/retention.py; 0 days: forever)."""
        ...

    async def checkpoint(self) -> tuple[int, int, int]:
        """A passive WAL checkpoint: (busy, log frames, checkpointed frames)."""
        ...

    async def optimize(self) -> None:
        """Refresh the query planner's statistics where they are stale."""
        ...


class UsageStore(Protocol):
    """Usage history (seed 000, store/usage.py): one accounting row per (cluster, job), its rollup."""

    async def ingest_accounting(
        self, cluster: str, records: Sequence[AccountingRecord], source: str
    ) -> tuple[int, int, int]:
        """Store the records in one transaction (all or none): (new, changed, unchanged)."""
        ...

    async def sync_monitored_usage(self) -> int:
        """Count ended monitored runs not yet in the usage rows; the number of runs looked at."""
        ...

    async def usage_clusters(self) -> list[tuple[str, int, int]]:
        """(cluster, first submit day, last submit day; days since the epoch) per cluster with usage."""
        ...

    async def usage_dimensions(self, f: UsageFilter) -> dict[str, list[str]]:
        """Partitions, accounts, users (``user_name``), QOS and states among the filtered jobs."""
        ...

    async def usage_totals(self, f: UsageFilter, users: bool = True) -> UsageTotals:
        """``users`` False: the distinct users may be left 0 (the dashboard counts them otherwise)."""
        ...

    async def usage_grouped(self, f: UsageFilter, by: str, users: bool = True) -> UsageGroups:
        """Usage per ``by``: ``period:day|week|month|quarter|year``, ``cluster`` or a dimension column;
        ``users`` False: distinct users per value of another dimension, or per period, may be left 0 (they
        cost a read of their own)."""
        ...

    async def usage_grouped_dims(self, f: UsageFilter, bys: Sequence[str]) -> dict[str, UsageGroups]:
        """``usage_grouped(f, by, users=False)`` for each dimension column of ``bys``, in one read."""
        ...

    async def usage_efficiency(self, f: UsageFilter) -> Efficiency: ...

    async def usage_jobs(self, f: UsageFilter, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """The filtered jobs' rows, newest submit first."""
        ...

    async def usage_breakdown(self, f: UsageFilter, kinds: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
        """Per kind of ``kinds``, the filtered jobs per value of it (``cpus``, ``gpus``, ``nodes``: the
        job's count; ``nodelist``: its node list as sacct printed it; or a dimension column): (key, jobs,
        cpu_hours, gpu_hours, waited, wait_s, wait_max, ran, duration_s), by key."""
        ...

    async def usage_by_period_and(self, f: UsageFilter, period: str, by: str) -> list[tuple[Any, ...]]:
        """(period key, value of the dimension ``by``, jobs, cpu_hours, gpu_hours, wait_s, duration_s)."""
        ...

    async def usage_user_summary(
        self, f: UsageFilter, period: str
    ) -> tuple[list[tuple[Any, ...]], dict[str, int], dict[str, int]]:
        """The filtered jobs' users: per user (user, jobs, cpu_hours, gpu_hours, waited, wait_s, wait_max,
        ran, duration_s) by user; the distinct users per period key; per user, the periods they were
        active in."""
        ...

    async def usage_node_hardware(self, cluster: str | None) -> dict[str, tuple[int, int]]:
        """(CPUs, GPUs) of the nodes agents reported, of ``cluster`` or of no stated cluster."""
        ...


class Store(JobStore, AccountStore, ConfigStore, SummaryStore, MaintenanceStore, UsageStore, Protocol):
    """Everything the services need from storage."""


class UsageViewStore(UsageStore, Protocol):
    """The web interface's usage view (issue 19, store/usage_view.py): the usage history broken
    down two ways at once. A protocol of its own, beside ``Store``, for the one service that asks it
    (services/usage_view.py); the SQLite store is both."""

    async def usage_per_period_and(self, f: UsageFilter, period: str, by: str) -> list[PeriodKeyUsage]:
        """Usage per (``week`` or ``month`` starting day, ``user_name`` or ``account`` value)."""
        ...

    async def usage_efficiency_per(self, f: UsageFilter, by: str) -> list[KeyEfficiency]:
        """Per ``user_name`` or ``account`` value, its monitored jobs' CPU and memory efficiency."""
        ...
