"""Node liveness: a node whose agent has been silent for node_down_after is down, and that is logged."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from jobpulse.collector.nodes import NodeWatch
from jobpulse.collector.services.events import EventBus, NodeDown, NodeUp
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from storehelp import db_of


async def test_node_goes_down_and_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    store.open()
    try:
        await store.hello(pb.Hello(node="n1", cluster="c", stream_id="s"))
        await store.hello(pb.Hello(node="n2", cluster="c", stream_id="s"))
        watch = NodeWatch(store, down_after=60)
        assert await watch.check() == {"n1": "up", "n2": "up"}
        # n1's agent last spoke 2 minutes ago.
        db_of(store).execute("UPDATE nodes SET last_seen = ? WHERE name = 'n1'", (time.time() - 120,))
        with caplog.at_level(logging.INFO):
            assert await watch.check() == {"n1": "down", "n2": "up"}
        assert "node n1 is down" in caplog.text
        nodes = {n.name: n for n in await store.nodes(60, now=time.time())}
        assert nodes["n1"].state == "down" and nodes["n1"].silent_seconds >= 119
        assert nodes["n2"].state == "up" and nodes["n2"].last_seen <= time.time()
        # A batch brings it back.
        await store.ingest("n1", "s", "c", pb.Batch(seq=1, node=[pb.NodeSample(time_ms=1)]))
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert (await watch.check())["n1"] == "up"
        assert "node n1 is up again" in caplog.text
    finally:
        store.close()


async def test_node_watch_publishes_down_and_up(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    store.open()
    try:
        bus = EventBus()
        events: list[object] = []
        bus.subscribe((NodeDown, NodeUp), events.append, inline=True)
        await store.hello(pb.Hello(node="n1", cluster="c", stream_id="s"))
        watch = NodeWatch(store, down_after=60, bus=bus)
        await watch.check()
        assert events == []  # up when first seen: no event
        db_of(store).execute("UPDATE nodes SET last_seen = ? WHERE name = 'n1'", (time.time() - 120,))
        await watch.check()
        await watch.check()  # still down: published once
        assert [type(e) for e in events] == [NodeDown] and events[0].node == "n1"  # type: ignore[attr-defined]
        await store.ingest("n1", "s", "c", pb.Batch(seq=1, node=[pb.NodeSample(time_ms=1)]))
        await watch.check()
        assert events[1:] == [NodeUp("n1")]
    finally:
        store.close()
