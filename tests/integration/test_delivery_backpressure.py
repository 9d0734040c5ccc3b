"""A slow database slows the agent's stream; the agent never has more than its window in flight."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
from jobpulse.agent.spool import Spool
from jobpulse.agent.stream import StreamClient
from jobpulse.collector.ingest import IngestServicer
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

T = TypeVar("T")


class SlowStore(SqliteStore):
    """A real SQLite store whose every write transaction takes 30 ms longer (a busy disk)."""

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def slow(db: sqlite3.Connection) -> T:
            time.sleep(0.03)
            return fn(db)

        return await super()._write(slow)


async def test_slow_database_slows_the_stream(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "db.sqlite")
    store.open()
    server = grpc.aio.server()
    pb_grpc.add_IngestServicer_to_server(IngestServicer(store), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    spool = Spool(tmp_path / "spool")
    for i in range(200):
        spool.append(pb.Batch(node=[pb.NodeSample(time_ms=1_000 + i)]))
    client = StreamClient(
        f"127.0.0.1:{port}", spool, lambda: pb.Hello(node="bp1", stream_id=spool.stream_id), max_in_flight=8
    )
    task = asyncio.create_task(client.run())
    started = time.monotonic()
    peak = 0
    try:
        while client.acked < 200:
            peak = max(peak, client.in_flight)
            assert time.monotonic() - started < 60, f"stuck at ack {client.acked}"
            await asyncio.sleep(0.002)
        elapsed = time.monotonic() - started
    finally:
        client.stop()
        await task
        await server.stop(None)
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        stored = db.execute("SELECT count(*) FROM node_samples WHERE node = 'bp1'").fetchone()[0]
    store.close()
    assert stored == 200
    assert 0 < peak <= 8, f"{peak} batches in flight with a window of 8"
    # 200 batches at most 8 per 30 ms transaction: the database set the pace, nothing piled up.
    assert elapsed >= 200 / 8 * 0.03 * 0.9
    assert len(spool) == 0
