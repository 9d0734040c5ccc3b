"""Read-ahead and group commit on a real gRPC stream: several messages of one agent share a transaction,
each is acknowledged in order only after its commit, and the read-ahead bound holds."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from jobpulse.collector import ingest as servicer_module
from jobpulse.collector.group_commit import Result
from jobpulse.collector.ingest import IngestServicer
from jobpulse.collector.store.ingest import Pending, ingest_many, prepare
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS, migrate
from jobpulse.collector.store.sqlite import SqliteStore, connect
from jobpulse.collector.store.stage import Stage
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

T = TypeVar("T")


class CountingStore(SqliteStore):
    """A real SQLite store that counts write transactions and makes each take 20 ms (a busy disk)."""

    transactions = 0

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def slow(db: sqlite3.Connection) -> T:
            time.sleep(0.02)
            return fn(db)

        self.transactions += 1
        return await super()._write(slow)


def _batch(seq: int, job: int = 7, value: float | None = None) -> pb.Batch:
    batch = pb.Batch(seq=seq)
    jobs = batch.jobs
    jobs.job_id.append(str(job))
    jobs.step.append("")
    jobs.time_ms.append(1_700_000_000_000 + seq * 1000)
    for column in JOB_SAMPLE_COLUMNS:
        getattr(jobs, column).append(float(seq) if value is None else value)
    return batch


async def _serve(servicer: IngestServicer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    pb_grpc.add_IngestServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def _send_all(target: str, messages: list[pb.AgentMessage]) -> list[int]:
    """Send every message at once (no waiting for acks); the acks' seqs, in order."""

    async def requests() -> AsyncIterator[pb.AgentMessage]:
        for message in messages:
            yield message

    acks = []
    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.IngestStub(channel).Stream(requests())
        async for reply in call:
            acks.append(reply.ack.seq)
            if len(acks) == len(messages):  # the hello's ack plus one per batch message
                break
        call.cancel()
    return acks


async def test_messages_of_one_stream_share_transactions_and_are_acked_in_order(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "db.sqlite")
    store.open()
    server, target = await _serve(IngestServicer(store))
    try:
        hello = pb.AgentMessage(hello=pb.Hello(node="g1", stream_id="s1"))
        batches = [pb.AgentMessage(batch=_batch(seq)) for seq in range(1, 41)]
        acks = await _send_all(target, [hello, *batches])
    finally:
        await server.stop(None)
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        stored = db.execute("SELECT count(*) FROM job_samples WHERE node = 'g1'").fetchone()[0]
    hellos = 1
    writes = store.transactions - hellos
    store.close()
    assert acks == list(range(41)), "one ack per message, in order, each after its commit"
    assert stored == 40
    # 40 messages sent at once: read ahead, they share a few 20 ms transactions instead of 40.
    assert writes <= 10, f"{writes} transactions for 40 messages"


async def test_read_ahead_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """However much an agent sends at once, at most READ_AHEAD of its batches wait for the database
    (what is beyond stays in gRPC's flow-control window and the agent's spool)."""
    store = CountingStore(tmp_path / "db.sqlite")
    store.open()
    monkeypatch.setattr(servicer_module, "READ_AHEAD", 4)
    servicer = IngestServicer(store)
    write = servicer.committer._write
    largest = 0

    async def measuring_write(items: list[Pending], staged: Stage | None = None) -> list[Result]:
        nonlocal largest
        largest = max(largest, len(items))
        return await write(items, staged)

    monkeypatch.setattr(servicer.committer, "_write", measuring_write)
    server, target = await _serve(servicer)
    try:
        hello = pb.AgentMessage(hello=pb.Hello(node="g2", stream_id="s2"))
        batches = [pb.AgentMessage(batch=_batch(seq)) for seq in range(1, 31)]
        acks = await _send_all(target, [hello, *batches])
    finally:
        await server.stop(None)
    store.close()
    assert acks == list(range(31))
    assert 1 < largest <= 4, f"a transaction carried {largest} batches of one stream (read-ahead 4)"


def test_rows_of_a_group_are_stored_in_key_order_and_the_first_sent_wins(tmp_path: Path) -> None:
    """Sorting a group's rows by primary key (for SQLite's sake) keeps INSERT OR IGNORE's rule: of two
    rows for the same job, node, step and time, the one sent first is kept."""
    db = connect(tmp_path / "db.sqlite")
    migrate(db)
    first = _batch(1, job=9, value=2.0)
    again = _batch(2, job=9, value=1.0)  # sorts before ``first`` by value, but was sent after it
    again.jobs.time_ms[0] = first.jobs.time_ms[0]
    later = _batch(3, job=3)  # a lower job id: sorts first
    items = [prepare("k1", "s", "c", b) for b in (first, again, later)]
    assert ingest_many(db, items, {}) == [(1, True), (2, True), (3, True)]
    assert [tuple(r) for r in db.execute("SELECT cpu_cores FROM job_samples WHERE job_id = 9")] == [(2.0,)]
    assert db.execute("SELECT count(*) FROM job_samples WHERE node = 'k1'").fetchone()[0] == 2
    series = db.execute("SELECT raw_first_ms, last_ms FROM job_series WHERE job_id = 9").fetchone()
    assert tuple(series) == (first.jobs.time_ms[0], first.jobs.time_ms[0])
    db.close()


def test_a_replay_inside_a_group_is_acknowledged_and_only_the_new_batches_are_stored(tmp_path: Path) -> None:
    """A group may carry a reconnected agent's replay between other streams' new batches: the replay's
    staged rows are dropped (the first copy stays as stored), everything around it is stored."""
    db = connect(tmp_path / "db.sqlite")
    migrate(db)
    known: dict[tuple[str, str], int] = {}

    def with_node(batch: pb.Batch, ts: int, load: float) -> pb.Batch:
        batch.node.add(time_ms=ts, load1=load)
        return batch

    first = with_node(_batch(1, job=4, value=1.0), 1, 1.0)
    assert ingest_many(db, [prepare("r1", "s", "c", first)], known) == [(1, True)]
    replay = with_node(
        _batch(1, job=4, value=99.0), 99, 99.0
    )  # the same seq again, as a replaying agent sends it
    replay.jobs.job_id.append("5")  # with a row the first copy did not have
    replay.jobs.step.append("")
    replay.jobs.time_ms.append(replay.jobs.time_ms[0])
    for column in JOB_SAMPLE_COLUMNS:
        getattr(replay.jobs, column).append(99.0)
    items = [
        prepare("r2", "s", "c", with_node(_batch(1, job=6), 1, 1.0)),
        prepare("r1", "s", "c", replay),
        prepare("r1", "s", "c", with_node(_batch(2, job=4, value=2.0), 2, 2.0)),
        prepare("r2", "s", "c", with_node(_batch(2, job=6), 2, 2.0)),
    ]
    staged = Stage()
    staged.add(items[:2])  # staged over two messages, as the committer does
    staged.add(items[2:])
    assert ingest_many(db, items, known, staged) == [(1, True), (1, False), (2, True), (2, True)]
    rows = db.execute("SELECT node, job_id, cpu_cores FROM job_samples ORDER BY node, job_id, ts").fetchall()
    assert [tuple(r) for r in rows] == [("r1", 4, 1.0), ("r1", 4, 2.0), ("r2", 6, 1.0), ("r2", 6, 2.0)]
    nodes = db.execute("SELECT node, ts, load1 FROM node_samples ORDER BY node, ts").fetchall()
    assert [tuple(r) for r in nodes] == [("r1", 1, 1.0), ("r1", 2, 2.0), ("r2", 1, 1.0), ("r2", 2, 2.0)]
    staged.close()
    db.close()


async def test_a_bad_batch_in_a_group_does_not_sink_the_others(tmp_path: Path) -> None:
    """The fallback stores a failed group's messages one by one; the other streams' batches are kept."""
    store = SqliteStore(tmp_path / "db.sqlite")
    store.open()
    servicer = IngestServicer(store)
    committer = servicer.committer
    bad = _batch(1, job=5)
    original = committer._write
    calls = 0

    async def failing_write(items: list[Pending], staged: Stage | None = None) -> list[Result]:
        nonlocal calls
        calls += 1
        if any(p.node == "bad" for p in items):
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return await original(items, staged)

    committer._write = failing_write  # type: ignore[method-assign]  # the first attempt holds both streams
    good = committer.submit("good", "s", "c", [_batch(1), _batch(2)])
    failed = committer.submit("bad", "s", "c", [bad])
    assert await good == [(1, True), (2, True)]
    with pytest.raises(sqlite3.OperationalError):
        await failed
    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        assert db.execute("SELECT count(*) FROM job_samples WHERE node = 'good'").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM job_samples WHERE node = 'bad'").fetchone()[0] == 0
    store.close()
    assert calls >= 2
