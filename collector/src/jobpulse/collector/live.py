"""Live job feeds: a dialect's frames of each job, fanned out to that job's WebSocket subscribers.

The ingest path publishes domain events on the event bus (services/events.py: :class:`BatchStored`,
:class:`JobEnded`); while anyone watches a job, the feed subscribes to them (deferred: off the ingest
hot path, in a later callback of the event loop), has the dialect encode its frames (``frames``, e.g.
the JobMon routes' in api/jobmon/live.py) once per job and message, not per subscriber, and publishes them on
the job's channel of the Litestar Channels plugin (in-memory backend), which fans them out to the
route's subscribers. Each live route has its own feed over the same bus (JobMon's protocol on
``/api/live/{id}``, jobpulse's per-sample frames on ``/api/live/{id}/raw``), so each format is encoded
only while someone watches in it. The feed counts those subscribers itself (the route subscribes through
:meth:`LiveFeed.subscribe`), so a job nobody watches costs no per-sample work, and with nobody watching
at all the feed is not even subscribed to the bus. Each subscriber has a bounded backlog that drops its
oldest messages when the client reads too slowly, so one slow browser cannot grow memory or hold up the
others. A job's end is published as the dialect's end frame, after which the route closes the socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from jobpulse.collector.services.events import (
    BatchStored,
    EventBus,
    JobEnded,
    JobRow,
    Subscription,
    publish_stored,
)
from jobpulse.proto.v1 import ingest_pb2 as pb
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.channels.backends.memory import MemoryChannelsBackend

log = logging.getLogger(__name__)

SUBSCRIBER_BACKLOG = 1000


def channel_name(job_id: int | str) -> str:
    return f"job:{job_id}"


class LiveFrames(Protocol):
    """How a dialect encodes its live frames (``published_ms``: when the frame was made)."""

    def samples(self, node: str, job_id: int, rows: list[JobRow], published_ms: float) -> Iterable[bytes]:
        """The frames of one job's whole-job rows from one agent message (in the order sent)."""
        ...

    def end(self, event: JobEnded, published_ms: float) -> bytes: ...


class LiveFeed:
    """Turns the bus's committed batches and job ends into per-job channel messages."""

    def __init__(self, bus: EventBus, frames: LiveFrames) -> None:
        self.bus = bus
        self.frames = frames
        self.plugin = ChannelsPlugin(
            backend=MemoryChannelsBackend(),
            arbitrary_channels_allowed=True,
            subscriber_max_backlog=SUBSCRIBER_BACKLOG,
            subscriber_backlog_strategy="dropleft",
        )
        self.published = 0
        self._watchers: dict[int, int] = {}  # job id -> open subscriptions (no entry: none)
        self._subscription: Subscription | None = None  # to the bus, while anyone watches

    def watchers(self, job_id: int) -> int:
        """How many subscribers job ``job_id``'s channel has right now."""
        return self._watchers.get(job_id, 0)

    @asynccontextmanager
    async def subscribe(self, job_id: int) -> AsyncIterator[Subscriber]:
        """A subscription to a job's channel, counted while it is open (call on the event loop).

        Counted (and the feed subscribed to the bus) before subscribing to the channel, uncounted after
        unsubscribing, so the count is never below the subscriptions the plugin holds: no message for a
        subscriber is skipped.
        """
        self._watchers[job_id] = self._watchers.get(job_id, 0) + 1
        if self._subscription is None:
            self._subscription = self.bus.subscribe((BatchStored, JobEnded), self._on_event)
        try:
            async with self.plugin.start_subscription([channel_name(job_id)]) as subscriber:
                yield subscriber
        finally:
            left = self._watchers[job_id] - 1
            if left:
                self._watchers[job_id] = left
            else:
                del self._watchers[job_id]
            if not self._watchers and self._subscription is not None:
                self._subscription.close()
                self._subscription = None

    def on_batches(self, node: str, batches: Sequence[pb.Batch]) -> None:
        """The ingest hook as it was: publishes the batches' events on the feed's bus (the collector's
        serve loop calls :func:`publish_stored` itself). Never raises."""
        publish_stored(self.bus, node, batches)

    def _on_event(self, event: Any) -> None:
        """A bus event (deferred: never on the ingest hot path) as frames of the watched jobs."""
        watched = self._watchers
        if not watched:
            return
        if isinstance(event, BatchStored):
            if watched.keys() & event.job_ids:
                now_ms = time.time() * 1000
                by_job: dict[int, list[JobRow]] = {}
                for row in event.job_rows(watched):
                    by_job.setdefault(row.job_id, []).append(row)
                for job_id, rows in by_job.items():
                    for frame in self.frames.samples(event.node, job_id, rows, now_ms):
                        self.plugin.publish(frame, channels=[channel_name(job_id)])
                        self.published += 1
        elif isinstance(event, JobEnded) and event.job_id in watched:
            frame = self.frames.end(event, time.time() * 1000)
            self.plugin.publish(frame, channels=[channel_name(event.job_id)])
