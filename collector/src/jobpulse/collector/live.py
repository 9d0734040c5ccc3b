"""Live job feeds: the ingest path publishes each committed sample on a per-job channel.

``IngestServicer.on_batch`` calls :meth:`LiveFeed.on_batch` right after a batch is committed, in the
collector's one event loop; the Litestar Channels plugin (in-memory backend) fans each message out to
the ``WS /api/live/{id}`` subscribers of that job. Each subscriber has a bounded backlog that drops
its oldest messages when the client reads too slowly, so one slow browser cannot grow memory or hold
up the others. A STOP event publishes a final ``{"type": "end"}`` message, after which the socket is
closed. Messages are encoded once per batch, not per subscriber.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.proto.v1 import ingest_pb2 as pb
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

log = logging.getLogger(__name__)

SUBSCRIBER_BACKLOG = 1000


def channel_name(job_id: int | str) -> str:
    return f"job:{job_id}"


def _job_number(value: str) -> int | None:
    """The numeric Slurm job id, or None (``str.isdigit`` alone would accept '²')."""
    return int(value) if value.isascii() and value.isdigit() else None


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
        # called with the job ids of every committed batch (e.g. to drop cached series of those jobs)
        self.job_listeners: list[Callable[[Iterable[int]], None]] = []

    def on_batch(self, node: str, batch: pb.Batch) -> None:
        """Publish the batch's whole-job samples and job ends. Never raises into the ingest path."""
        try:
            self._publish(node, batch)
        except Exception:  # a live view must never cost an ingest
            log.exception("live feed: could not publish batch %d from %s", batch.seq, node)

    def _publish(self, node: str, batch: pb.Batch) -> None:
        if self.job_listeners:
            ids = {n for n in (_job_number(j.strip()) for j in batch.jobs.job_id) if n is not None}
            for listener in self.job_listeners:
                listener(ids)
        if self.plugin._pub_queue is None:  # app not started yet (no subscribers possible)
            return
        now_ms = time.time() * 1000
        jobs = batch.jobs
        by_job: dict[int, list[dict[str, Any]]] = {}
        for i, raw_id in enumerate(jobs.job_id):
            job_id = _job_number(raw_id.strip())
            if jobs.step[i] or job_id is None:
                continue
            values = {c: _finite(getattr(jobs, c)[i]) for c in JOB_SAMPLE_COLUMNS}
            by_job.setdefault(job_id, []).append({"ts": jobs.time_ms[i] / 1000, "values": values})
        for job_id, samples in by_job.items():
            for sample in samples:
                message = {
                    "type": "sample",
                    "job": job_id,
                    "node": node,
                    "published_ms": now_ms,
                    **sample,
                }
                self.plugin.publish(msgspec.json.encode(message), channels=[channel_name(job_id)])
                self.published += 1
        for event in batch.events:
            stopped = _job_number(event.meta.job_id.strip())
            if event.kind == pb.JobEvent.STOP and stopped is not None:
                end = {
                    "type": "end",
                    "job": stopped,
                    "node": node,
                    "state": event.meta.state or "COMPLETED",
                    "published_ms": now_ms,
                }
                self.plugin.publish(msgspec.json.encode(end), channels=[channel_name(stopped)])
