"""The collector refuses malformed agent input with a clear answer and keeps serving.

A malformed *stream* (no hello, a hello whose node is not a host name, a second hello, a seq beyond
64 bits) ends with INVALID_ARGUMENT naming the field. A malformed *batch* is answered with a Reject
(before the ack that passes it): nothing of it is stored, and the stream goes on (issue 14: one bad
batch used to end the stream, and the agent resent it forever).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Iterator

import grpc
import pytest
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc
from support import Collector, start_collector, stop


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """One collector for the module (each test streams as its own node): starting one costs seconds."""
    c = start_collector(tmp_path_factory.mktemp("malformed") / "collector")
    yield c
    stop(c.proc)


async def _stream(target: str, *messages: pb.AgentMessage) -> list[pb.CollectorMessage]:
    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.IngestStub(channel).Stream(iter(messages))
        return [m async for m in call]


def _replies(target: str, *messages: pb.AgentMessage) -> list[tuple[str, int, str]]:
    """(kind, seq, reason) of every answer of one stream."""
    out = []
    for m in asyncio.run(_stream(target, *messages)):
        kind = m.WhichOneof("body")
        if kind == "ack":
            out.append(("ack", m.ack.seq, ""))
        elif kind == "reject":
            out.append(("reject", m.reject.seq, m.reject.reason))
    return out


def _hello(node: str = "n1", stream: str = "s1") -> pb.AgentMessage:
    return pb.AgentMessage(hello=pb.Hello(node=node, cluster="c", stream_id=stream))


def _batch_of(seq: int, job_id: str = "1", ragged: bool = False) -> pb.Batch:
    batch = pb.Batch(seq=seq)
    jobs = batch.jobs
    jobs.job_id.append(job_id)
    jobs.step.append("")
    jobs.time_ms.append(1_700_000_000_000 + seq % 1_000_000)
    for column in JOB_SAMPLE_COLUMNS:
        getattr(jobs, column).append(math.nan)
    if ragged:
        jobs.cpu_user_seconds.append(1.0)
    return batch


def _batch(seq: int, job_id: str = "1", ragged: bool = False) -> pb.AgentMessage:
    return pb.AgentMessage(batch=_batch_of(seq, job_id, ragged))


def _assert_status(messages: object, code: grpc.StatusCode, text: str, target: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        asyncio.run(_stream(target, *messages))  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    assert text in (info.value.details() or ""), info.value.details()
    return info.value.details() or ""


def _db(collector: Collector) -> sqlite3.Connection:
    return sqlite3.connect(collector.state / "jobpulse.db", timeout=30)


def _stored(collector: Collector, node: str) -> tuple[list[int], int]:
    """(sample times stored for ``node``, relative to the batches' base time; its last seq)."""
    with _db(collector) as conn:
        times = [
            r[0] - 1_700_000_000_000
            for r in conn.execute("SELECT ts FROM job_samples WHERE node = ?", (node,))
        ]
        row = conn.execute("SELECT max(last_seq) FROM agent_streams WHERE node = ?", (node,)).fetchone()
    return sorted(times), int(row[0] or 0)


def test_malformed_streams_are_refused_and_the_collector_survives(collector: Collector) -> None:
    target = collector.grpc_target
    _assert_status([_batch(1)], grpc.StatusCode.INVALID_ARGUMENT, "Hello", target)
    _assert_status([_hello(), _hello()], grpc.StatusCode.INVALID_ARGUMENT, "only batches", target)

    async def garbage() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.stream_stream(
                "/jobpulse.v1.Ingest/Stream", request_serializer=None, response_deserializer=None
            )(iter([b"\xff\xff\xff\xff not protobuf"]))
            async for _ in call:
                pass

    with pytest.raises(grpc.aio.AioRpcError):
        asyncio.run(garbage())
    # Still alive, and a well-formed stream is stored and acknowledged; a replay is acked, not stored twice.
    acks = asyncio.run(_stream(target, _hello(), _batch(1), _batch(2), _batch(2)))
    assert [m.ack.seq for m in acks] == [0, 1, 2, 2]
    assert collector.proc.poll() is None
    assert collector.get("/api/ping").status_code == 200


def _bad_event(seq: int) -> pb.AgentMessage:
    message = _batch(seq)
    message.batch.events.add(kind=pb.JobEvent.START).meta.job_id = "x9"
    return message


def _bad_gap(seq: int) -> pb.AgentMessage:
    message = _batch(seq)
    message.batch.gaps.add(batches=2**64 - 1, bytes=1)
    return message


def _bad_memory(seq: int) -> pb.AgentMessage:
    message = _batch(seq)
    event = message.batch.events.add(kind=pb.JobEvent.START)
    event.meta.job_id, event.meta.mem_requested_bytes = "5", 2**64 - 1
    return message


def _event_with(seq: int, **meta: str) -> pb.AgentMessage:
    message = _batch(seq)
    event = message.batch.events.add(kind=pb.JobEvent.START)
    event.meta.job_id = "5"
    for key, value in meta.items():
        setattr(event.meta, key, value)
    return message


HUGE = str(2**64)
BAD_BATCHES = {
    "ragged": (lambda seq: _batch(seq, ragged=True), "different lengths"),
    "letters": (lambda seq: _batch(seq, job_id="abc"), "job_id 'abc'"),
    # An integer SQLite cannot hold is refused by name too (it used to fail the whole group's commit).
    "huge": (lambda seq: _batch(seq, job_id=HUGE), HUGE),
    "negative": (lambda seq: _batch(seq, job_id="-5"), "'-5'"),
    # D2: what str.isdigit() and int() let through: superscripts, other scripts' digits, '_', spaces
    "superscript": (lambda seq: _batch(seq, job_id="²"), "job_id '²'"),
    "arabic-indic": (lambda seq: _batch(seq, job_id="٣"), "job_id '٣'"),
    "underscore": (lambda seq: _batch(seq, job_id="1_2"), "job_id '1_2'"),
    "space": (lambda seq: _batch(seq, job_id=" 7"), "job_id ' 7'"),
    "event": (_bad_event, "job_id 'x9'"),
    "gap": (_bad_gap, "gaps"),
    "memory": (_bad_memory, "mem_requested_bytes"),
    # an older or foreign agent's names: what the agent's own checks would have refused
    "user-nul": (lambda seq: _event_with(seq, user="a\x00b"), "events: user"),
    "account-bidi": (lambda seq: _event_with(seq, account="\u202eevil"), "events: account"),
    "job-name-newline": (lambda seq: _event_with(seq, job_name="a\nb"), "events: job_name"),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_a_malformed_batch_is_rejected_and_the_stream_goes_on(collector: Collector, case: str) -> None:
    """Issue 14 D2: the bad batch is answered with a Reject naming the field, before the ack that passes
    it; the batches around it are stored, and a replay of the stream is only acknowledged."""
    make, text = BAD_BATCHES[case]
    node, target = f"bad-{case}", collector.grpc_target
    replies = _replies(target, _hello(node), _batch(1), make(2), _batch(3))
    assert [(kind, seq) for kind, seq, _ in replies] == [
        ("ack", 0),
        ("ack", 1),
        ("reject", 2),
        ("ack", 2),
        ("ack", 3),
    ]
    assert text in replies[2][2]
    assert _stored(collector, node) == ([1, 3], 3)
    # Reconnected, the agent resumes after 3; a replay of the refused batch is acked, not refused again.
    assert _replies(target, _hello(node), make(2), _batch(4)) == [
        ("ack", 3, ""),
        ("ack", 3, ""),
        ("ack", 4, ""),
    ]
    assert _stored(collector, node) == ([1, 3, 4], 4)


def test_a_malformed_batch_in_a_bundle_leaves_the_others_stored(collector: Collector) -> None:
    bundle = pb.AgentMessage(
        batches=pb.Batches(batches=[_batch_of(1), _batch_of(2, job_id="²"), _batch_of(3)])
    )
    replies = _replies(collector.grpc_target, _hello("bundle"), bundle, _batch(4))
    assert [(kind, seq) for kind, seq, _ in replies] == [("ack", 0), ("reject", 2), ("ack", 3), ("ack", 4)]
    assert _stored(collector, "bundle") == ([1, 3, 4], 4)
    assert collector.proc.poll() is None


@pytest.mark.parametrize("seq", [2**63, 2**64 - 1])
def test_d6_seq_beyond_64_bits_is_invalid_argument_naming_seq(collector: Collector, seq: int) -> None:
    """Issue 14 D6: a seq SQLite cannot hold ended the stream with UNKNOWN (an OverflowError in the
    writer); it is INVALID_ARGUMENT naming it, after the batches before it were acknowledged."""
    target = collector.grpc_target
    details = _assert_status(
        [_hello(f"big-seq-{seq}"), _batch(seq)], grpc.StatusCode.INVALID_ARGUMENT, "seq", target
    )
    assert str(seq) in details
    acks = asyncio.run(_stream(target, _hello(f"big-seq-{seq}"), _batch(1)))
    assert [m.ack.seq for m in acks] == [0, 1]
    assert collector.proc.poll() is None


@pytest.mark.parametrize("node", ["../etc/passwd", "a\x00b", "x" * 100_000, "node 1", "\u202enode", "n/1"])
def test_d11_hello_node_that_is_not_a_host_name_is_refused(collector: Collector, node: str) -> None:
    """Issue 14 D11: node names with '../', NUL or 100,000 characters were stored; now the hello is
    refused with INVALID_ARGUMENT naming `node`, and nothing of the stream is kept."""
    target = collector.grpc_target
    # the hello alone, as an agent sends it (batches only after the collector's first ack): a client
    # still writing when the server ends the call can see gRPC's INTERNAL instead of the status sent
    _assert_status([_hello(node)], grpc.StatusCode.INVALID_ARGUMENT, "node", target)
    with _db(collector) as conn:
        assert conn.execute("SELECT count(*) FROM nodes WHERE name = ?", (node,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM job_samples WHERE node = ?", (node,)).fetchone()[0] == 0


def test_hello_fields_out_of_range_are_refused_by_name(collector: Collector) -> None:
    target = collector.grpc_target
    hello = _hello("ok-node")
    hello.hello.memory_bytes = 2**64 - 1
    _assert_status([hello], grpc.StatusCode.INVALID_ARGUMENT, "memory_bytes", target)
    hello = _hello("ok-node")
    hello.hello.cluster = "c\x1b[31m"
    _assert_status([hello], grpc.StatusCode.INVALID_ARGUMENT, "cluster", target)
    assert [m.ack.seq for m in asyncio.run(_stream(target, _hello("ok-node"), _batch(1)))] == [0, 1]
