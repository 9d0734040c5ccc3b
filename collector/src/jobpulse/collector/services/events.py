"""The in-process event bus: what happened in the collector, for whoever listens.

Publishers say what happened in domain terms, after it is stored: the ingest path
(:func:`publish_stored`, after a message's batches are committed) publishes :class:`BatchStored` and
the :class:`JobStarted` / :class:`JobEnded` events of agent prologs and epilogs; the job service those
of the REST job start and stop; the reconciler (services/reconcile.py, :func:`publish_run_change`)
those of runs that Slurm's records created or ended; the node watch publishes :class:`NodeDown` and
:class:`NodeUp`; the summary pass (services/summaries.py) publishes :class:`FindingAdded`. Subscribers (the live feeds of each API
dialect, the job data cache, future webhooks) decide what to make of it, each in its own format.

Publishing is cheap and never blocks or fails the publisher: an event nobody subscribed to costs a dict
look-up; a subscriber's event is appended to that subscriber's own bounded queue, which the event loop
drains in a later callback (``call_soon``), so a subscriber that encodes frames or is slow does so off
the ingest hot path, and when it cannot keep up its oldest events are dropped (counted), not the
publisher slowed. Only handlers that are trivially cheap and must see the event before the publisher
goes on (dropping a cache entry) subscribe ``inline``. A handler's exception is logged, never raised
into the publisher.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from jobpulse.collector.domain.jobs import RunChange
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)

DEFAULT_BACKLOG = 10_000  # events queued per deferred subscriber before the oldest are dropped


# -- events ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JobStarted:
    """A job started, as ``source`` reported it: an agent's prolog (or ``jobpulse-agent exec``) on
    ``node`` (``agent``, once per node), the REST job start (``api``), or Slurm's records showing a run
    nobody had reported (``reconciler``, or an admin's ``refresh``); ``node`` is "" when the report is
    about the whole job."""

    job_id: int
    node: str
    time: float  # seconds since the epoch
    source: str = "agent"


@dataclass(frozen=True, slots=True)
class JobEnded:
    """A job ended, as ``source`` reported it: an agent's epilog on ``node`` (``agent``), the REST job
    stop (``api``), or Slurm's records ending a run still running here (``reconciler``, or an admin's
    ``refresh``); ``node`` is "" when the report is about the whole job. ``state`` as reported ("" when
    unknown)."""

    job_id: int
    node: str
    state: str
    time: float  # seconds since the epoch
    source: str = "agent"


class JobRow(NamedTuple):
    """One whole-job sample (not a step's): ``values`` by metric column, None where not measured."""

    job_id: int
    ts: float  # seconds since the epoch
    values: dict[str, float | None]


@dataclass(slots=True, eq=False)  # not frozen: made once per message, a frozen init costs 3x; read-only
class BatchStored:
    """The batches of one agent message, committed. ``job_ids``: the jobs they hold samples of.

    The rows themselves are read on demand with :meth:`job_rows`, so a message whose jobs nobody
    watches costs no per-sample work. Subscribers must not change it (it is shared).
    """

    node: str
    job_ids: frozenset[int]
    batches: Sequence[pb.Batch]

    def job_rows(self, wanted: Collection[int]) -> Iterator[JobRow]:
        """The whole-job rows of the jobs in ``wanted``, in the order they were sent."""
        for batch in self.batches:
            jobs = batch.jobs
            ids = jobs.job_id
            hits = {raw for raw in set(ids) if int(raw) in wanted}  # each distinct id read once
            if not hits:
                continue
            steps = jobs.step
            times = jobs.time_ms
            columns = [(c, getattr(jobs, c)) for c in JOB_SAMPLE_COLUMNS]
            for i, raw in enumerate(ids):
                if raw in hits and not steps[i]:
                    yield JobRow(int(raw), times[i] / 1000, {c: _finite(values[i]) for c, values in columns})


@dataclass(frozen=True, slots=True)
class NodeDown:
    """A node's agent has been silent for longer than ``node_down_after``."""

    node: str
    silent_seconds: float


@dataclass(frozen=True, slots=True)
class NodeUp:
    """A node that was down has reported again."""

    node: str


@dataclass(frozen=True, slots=True)
class FindingAdded:
    """An efficiency finding was recorded for a job (``kind``: which finding, e.g. ``low_cpu``)."""

    job_id: int
    kind: str


Event = JobStarted | JobEnded | BatchStored | NodeDown | NodeUp | FindingAdded
Handler = Callable[[Any], None]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# -- the bus --------------------------------------------------------------------------------------
class Subscription:
    """One subscriber's registration; :meth:`EventBus.unsubscribe` (or :meth:`close`) ends it."""

    __slots__ = ("_bus", "active", "dropped", "handler", "inline", "kinds", "loop", "queue", "scheduled")

    def __init__(
        self,
        bus: EventBus,
        kinds: tuple[type, ...],
        handler: Handler,
        inline: bool,
        loop: asyncio.AbstractEventLoop | None,
        backlog: int,
    ) -> None:
        self._bus = bus
        self.kinds = kinds
        self.handler = handler
        self.inline = inline
        self.loop = loop
        self.queue: deque[Any] = deque(maxlen=backlog)
        self.scheduled = False
        self.active = True
        self.dropped = 0  # events dropped because the subscriber fell ``backlog`` behind

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def _offer(self, event: Any) -> None:
        """Queue ``event`` and make sure a drain is scheduled (any thread)."""
        queue = self.queue
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(event)
        if self.scheduled:
            return
        self.scheduled = True
        loop = self.loop
        assert loop is not None
        try:
            try:
                same = asyncio.get_running_loop() is loop
            except RuntimeError:
                same = False
            if same:
                loop.call_soon(self._drain)
            else:
                loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed (shutting down): nobody left to deliver to
            self.scheduled = False
            queue.clear()

    def _drain(self) -> None:
        self.scheduled = False  # first: an event queued while draining schedules another drain
        queue = self.queue
        while queue and self.active:
            event = queue.popleft()
            try:
                self.handler(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", self.handler, type(event).__name__)


class EventBus:
    """Typed events to their subscribers. See the module's docstring for the delivery rules."""

    def __init__(self, backlog: int = DEFAULT_BACKLOG) -> None:
        self.backlog = backlog
        self._subscribers: dict[type, tuple[Subscription, ...]] = {}

    def subscribe(
        self, kinds: type | tuple[type, ...], handler: Handler, *, inline: bool = False
    ) -> Subscription:
        """Call ``handler(event)`` for each event of the types ``kinds`` published from now on.

        Deferred (the default): the handler runs in a later callback of the running event loop (this
        must be called on it), in publication order, and a subscriber ``backlog`` events behind loses
        the oldest. ``inline``: the handler runs inside :meth:`publish`; only for cheap handlers that
        must not miss the moment (it may then run on the publisher's thread).
        """
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        loop = None if inline else asyncio.get_running_loop()
        subscription = Subscription(self, kinds, handler, inline, loop, self.backlog)
        for kind in kinds:
            self._subscribers[kind] = (*self._subscribers.get(kind, ()), subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """No event reaches ``subscription`` after this, not even one already queued for it."""
        subscription.active = False
        subscription.queue.clear()
        for kind in subscription.kinds:
            left = tuple(s for s in self._subscribers.get(kind, ()) if s is not subscription)
            if left:
                self._subscribers[kind] = left
            else:
                self._subscribers.pop(kind, None)

    def wants(self, kind: type) -> bool:
        """Whether anyone subscribed to ``kind`` (so a publisher can skip building such events)."""
        return kind in self._subscribers

    def publish(self, event: Event) -> None:
        """Hand ``event`` to its subscribers; returns at once and never raises."""
        subscribers = self._subscribers.get(type(event))
        if not subscribers:
            return
        for subscription in subscribers:
            if subscription.inline:
                try:
                    subscription.handler(event)
                except Exception:
                    log.exception(
                        "event subscriber %r failed on %s", subscription.handler, type(event).__name__
                    )
            else:
                subscription._offer(event)


# -- the ingest side ------------------------------------------------------------------------------
def publish_stored(bus: EventBus, node: str, batches: Sequence[pb.Batch]) -> None:
    """The ingest hook: the events of one agent message's committed batches. Never raises into ingest.

    Runs once per message on the ingest hot path: it reads each batch's job ids once (the job data
    cache needs them for every message), builds job events only when someone listens to them, and
    leaves reading the samples to the subscribers that want them (:meth:`BatchStored.job_rows`).
    """
    if not batches:
        return
    try:
        if bus.wants(BatchStored):
            raw_ids: set[str] = set()
            for batch in batches:
                raw_ids.update(batch.jobs.job_id[:])
            # Committed batches passed prepare(): every id is one int() reads, stored as that int.
            bus.publish(BatchStored(node, frozenset(map(int, raw_ids)), batches))
        started, ended = bus.wants(JobStarted), bus.wants(JobEnded)
        if started or ended:
            for batch in batches:
                for event in batch.events:
                    if event.kind == pb.JobEvent.STOP and ended:
                        meta = event.meta
                        bus.publish(JobEnded(int(meta.job_id), node, meta.state, event.time_ms / 1000))
                    elif event.kind == pb.JobEvent.START and started:
                        bus.publish(JobStarted(int(event.meta.job_id), node, event.time_ms / 1000))
    except Exception:  # an event must never cost an ingest
        log.exception("events: could not publish %d batches from %s", len(batches), node)


# -- stored job changes ---------------------------------------------------------------------------
def publish_run_change(bus: EventBus, change: RunChange, source: str) -> None:
    """:class:`JobStarted` for a run that a write created, :class:`JobEnded` for one it ended (``node``
    "": the report is about the whole job, not one node's)."""
    run = change.run
    if run is None:
        return
    if change.created:
        bus.publish(JobStarted(run.job_id, "", float(run.start_time), source))
    if change.ended:
        bus.publish(JobEnded(run.job_id, "", run.state, float(run.stop_time or run.start_time), source))
