"""The in-process event bus (services/events.py): delivery, isolation of slow subscribers, unsubscribe,
and the events the ingest hook publishes."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
from jobpulse.collector.services.events import (
    BatchStored,
    EventBus,
    JobEnded,
    JobStarted,
    NodeDown,
    NodeUp,
    publish_stored,
)
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.proto.v1 import ingest_pb2 as pb


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_slow_subscriber_does_not_slow_publish() -> None:
    bus = EventBus()
    seen: list[str] = []

    def slow(event: NodeDown) -> None:  # e.g. a subscriber encoding big frames
        time.sleep(0.1)
        seen.append(event.node)

    bus.subscribe(NodeDown, slow)
    started = time.perf_counter()
    for i in range(5):
        bus.publish(NodeDown(f"n{i}", 60.0))
    assert time.perf_counter() - started < 0.05  # five events, none of them handled yet
    assert seen == []
    await _settle()
    assert seen == [f"n{i}" for i in range(5)]  # later, all of them, in order


async def test_each_subscriber_gets_the_events_of_its_types_in_order() -> None:
    bus = EventBus()
    nodes: list[object] = []
    everything: list[object] = []
    bus.subscribe((NodeDown, NodeUp), nodes.append)
    bus.subscribe((NodeDown, NodeUp, JobEnded), everything.append)
    events = [NodeDown("a", 61.0), JobEnded(7, "a", "FAILED", 1.0), NodeUp("a")]
    for event in events:
        bus.publish(event)
    await _settle()
    assert nodes == [events[0], events[2]] and everything == events
    assert bus.wants(NodeUp) and not bus.wants(JobStarted)


async def test_unsubscribe_stops_delivery_even_of_queued_events() -> None:
    bus = EventBus()
    seen: list[object] = []
    subscription = bus.subscribe(NodeUp, seen.append)
    bus.publish(NodeUp("a"))
    await _settle()
    bus.publish(NodeUp("b"))  # queued, not yet delivered
    subscription.close()
    bus.publish(NodeUp("c"))
    await _settle()
    assert seen == [NodeUp("a")] and not bus.wants(NodeUp)
    bus.unsubscribe(subscription)  # twice is harmless


async def test_a_subscriber_that_falls_behind_loses_its_oldest_events() -> None:
    bus = EventBus(backlog=3)
    seen: list[object] = []
    subscription = bus.subscribe(NodeUp, seen.append)
    for name in "abcde":
        bus.publish(NodeUp(name))
    await _settle()
    assert seen == [NodeUp("c"), NodeUp("d"), NodeUp("e")] and subscription.dropped == 2


async def test_inline_subscribers_run_inside_publish_and_failures_are_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("boom")

    bus.subscribe(NodeUp, broken, inline=True)
    bus.subscribe(NodeUp, seen.append, inline=True)
    bus.subscribe(NodeUp, broken)  # deferred: logged when drained
    with caplog.at_level(logging.ERROR):
        bus.publish(NodeUp("a"))
        assert seen == [NodeUp("a")]  # at once, despite the broken one before it
        await _settle()
    failures = [r for r in caplog.records if r.exc_info and "boom" in str(r.exc_info[1])]
    assert len(failures) == 2


async def test_publish_from_another_thread_reaches_deferred_subscribers() -> None:
    bus = EventBus()
    got = asyncio.Event()
    seen: list[object] = []

    def handler(event: object) -> None:
        seen.append((event, threading.current_thread() is threading.main_thread()))
        got.set()

    bus.subscribe(NodeUp, handler)
    thread = threading.Thread(target=bus.publish, args=(NodeUp("a"),))
    thread.start()
    thread.join()
    await asyncio.wait_for(got.wait(), 5)
    assert seen == [(NodeUp("a"), True)]  # handled on the loop's thread


def _batch(job_ids: list[str], events: list[tuple[int, str, str]] | None = None) -> pb.Batch:
    batch = pb.Batch(seq=1)
    for i, job in enumerate(job_ids):
        for step in ("", "batch"):
            batch.jobs.job_id.append(job)
            batch.jobs.step.append(step)
            batch.jobs.time_ms.append(1_000_000 + i)
            for column in JOB_SAMPLE_COLUMNS:
                getattr(batch.jobs, column).append(float("nan") if column == "pids" else 2.0)
    for kind, job, state in events or []:
        batch.events.append(pb.JobEvent(kind=kind, time_ms=5000, meta=pb.JobMeta(job_id=job, state=state)))
    return batch


async def test_the_ingest_hook_publishes_stored_batches_and_job_events() -> None:
    bus = EventBus()
    stored: list[BatchStored] = []
    jobs: list[object] = []
    publish_stored(bus, "n1", [_batch(["5"])])  # nobody listens: nothing is built
    bus.subscribe(BatchStored, stored.append, inline=True)
    bus.subscribe((JobStarted, JobEnded), jobs.append)
    batches = [
        _batch(["5", "6"], [(pb.JobEvent.START, "6", "")]),
        _batch(["5"], [(pb.JobEvent.STOP, "5", "FAILED")]),
    ]
    publish_stored(bus, "n1", batches)
    assert len(stored) == 1 and stored[0].node == "n1" and stored[0].job_ids == {5, 6}
    rows = list(stored[0].job_rows({5}))
    assert [(r.job_id, r.ts) for r in rows] == [(5, 1000.0), (5, 1000.0)]  # whole-job rows only
    assert rows[0].values["cpu_cores"] == 2.0 and rows[0].values["pids"] is None
    await _settle()
    assert jobs == [JobStarted(6, "n1", 5.0), JobEnded(5, "n1", "FAILED", 5.0)]


def test_a_broken_batch_never_raises_into_ingest(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    bus.subscribe(BatchStored, lambda event: None, inline=True)
    with caplog.at_level(logging.ERROR):
        publish_stored(bus, "n1", [_batch(["not-a-number"])])
    assert "could not publish" in caplog.text
