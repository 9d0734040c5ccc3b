"""Live job feeds: the ingest path publishes each committed sample on a per-job channel.

``IngestServicer.on_batches`` calls :meth:`LiveFeed.on_batches` right after a message's batches are committed, in the
collector's one event loop; the Litestar Channels plugin (in-memory backend) fans each message out to
the ``WS /api/live/{id}`` subscribers of that job. The feed counts those subscribers itself (the handler
subscribes through :meth:`LiveFeed.subscribe`), so a job nobody watches costs no per-sample work. Each subscriber has a bounded backlog that drops
its oldest messages when the client reads too slowly, so one slow browser cannot grow memory or hold
up the others. A STOP event publishes a final ``{"type": "end"}`` message, after which the socket is
closed. Messages are encoded once per batch, not per subscriber.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

import msgspec
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.proto.v1 import ingest_pb2 as pb
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.channels.backends.memory import MemoryChannelsBackend

log = logging.getLogger(__name__)

SUBSCRIBER_BACKLOG = 1000


def channel_name(job_id: int | str) -> str:
    return f"job:{job_id}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class LiveFeed:
    """Turns committed batches into per-job channel messages."""

    def __init__(self) -> None:
        self.plugin = ChannelsPlugin(
            backend=MemoryChannelsBackend(),
            arbitrary_channels_allowed=True,
            subscriber_max_backlog=SUBSCRIBER_BACKLOG,
            subscriber_backlog_strategy="dropleft",
        )
        self.published = 0
        self._watchers: dict[int, int] = {}  # job id -> open subscriptions (no entry: none)
        # called with the job ids of every committed batch (e.g. to drop cached series of those jobs)
        self.job_listeners: list[Callable[[Iterable[int]], None]] = []

    def watchers(self, job_id: int) -> int:
        """How many subscribers job ``job_id``'s channel has right now."""
        return self._watchers.get(job_id, 0)

    @asynccontextmanager
    async def subscribe(self, job_id: int) -> AsyncIterator[Subscriber]:
        """A subscription to a job's channel, counted while it is open.

        Counted before subscribing and uncounted after unsubscribing, so the count is never below the
        subscriptions the plugin holds: no message for a subscriber is skipped.
        """
        self._watchers[job_id] = self._watchers.get(job_id, 0) + 1
        try:
            async with self.plugin.start_subscription([channel_name(job_id)]) as subscriber:
                yield subscriber
        finally:
            left = self._watchers[job_id] - 1
            if left:
                self._watchers[job_id] = left
            else:
                del self._watchers[job_id]

    def on_batches(self, node: str, batches: Sequence[pb.Batch]) -> None:
        """Publish the whole-job samples and job ends of committed batches. Never raises into ingest.

        Called once per agent message on the ingest hot path: a job nobody watches costs no
        per-sample work here, only its id once per message (for the job listeners).
        """
        try:
            self._publish(node, batches)
        except Exception:  # a live view must never cost an ingest
            log.exception("live feed: could not publish %d batches from %s", len(batches), node)

    def _publish(self, node: str, batches: Sequence[pb.Batch]) -> None:
        if not batches:
            return
        raw_ids: set[str] = set()
        for batch in batches:
            raw_ids.update(batch.jobs.job_id[:])
        # Committed batches passed prepare(): every id (samples and events) is one int() reads, and
        # is stored as that int.
        ids = set(map(int, raw_ids))
        for listener in self.job_listeners:
            listener(ids)
        subscribed = self._watchers
        if not subscribed:  # nobody watches (always so before the app has started)
            return
        watched = {raw for raw in raw_ids if int(raw) in subscribed}
        for batch in batches:
            if watched:
                self._publish_samples(node, batch.jobs, watched)
            for event in batch.events:
                stopped = int(event.meta.job_id)
                if event.kind == pb.JobEvent.STOP and stopped in subscribed:
                    end = {
                        "type": "end",
                        "job": stopped,
                        "node": node,
                        "state": event.meta.state or "COMPLETED",
                        "published_ms": time.time() * 1000,
                    }
                    self.plugin.publish(msgspec.json.encode(end), channels=[channel_name(stopped)])

    def _publish_samples(self, node: str, jobs: pb.JobSamples, watched: set[str]) -> None:
        """The whole-job rows of the watched jobs (``watched``: their ids as the agent sent them)."""
        now_ms = time.time() * 1000
        steps = jobs.step
        columns = [(c, getattr(jobs, c)) for c in JOB_SAMPLE_COLUMNS]
        for i, raw_id in enumerate(jobs.job_id):
            if raw_id not in watched or steps[i]:
                continue
            job_id = int(raw_id)
            message = {
                "type": "sample",
                "job": job_id,
                "node": node,
                "published_ms": now_ms,
                "ts": jobs.time_ms[i] / 1000,
                "values": {c: _finite(values[i]) for c, values in columns},
            }
            self.plugin.publish(msgspec.json.encode(message), channels=[channel_name(job_id)])
            self.published += 1
