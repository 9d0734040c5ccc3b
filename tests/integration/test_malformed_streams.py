"""The collector refuses malformed agent streams with a clear status and keeps serving."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import grpc
import pytest
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc
from support import Collector, start_collector, stop


@pytest.fixture
def collector(tmp_path: Path) -> Collector:
    c = start_collector(tmp_path / "collector")
    yield c
    stop(c.proc)


async def _stream(target: str, *messages: pb.AgentMessage) -> list[pb.CollectorMessage]:
    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.IngestStub(channel).Stream(iter(messages))
        return [m async for m in call]


def _hello() -> pb.AgentMessage:
    return pb.AgentMessage(hello=pb.Hello(node="n1", cluster="c", stream_id="s1"))


def _batch(seq: int, job_id: str = "1", ragged: bool = False) -> pb.AgentMessage:
    batch = pb.Batch(seq=seq)
    jobs = batch.jobs
    jobs.job_id.append(job_id)
    jobs.step.append("")
    jobs.time_ms.append(1_700_000_000_000 + seq)
    from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS

    for column in JOB_SAMPLE_COLUMNS:
        getattr(jobs, column).append(math.nan)
    if ragged:
        jobs.cpu_user_seconds.append(1.0)
    return pb.AgentMessage(batch=batch)


def _assert_status(messages: object, code: grpc.StatusCode, text: str, target: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        asyncio.run(_stream(target, *messages))  # type: ignore[misc]
    assert info.value.code() == code
    assert text in (info.value.details() or "")


def test_malformed_streams_are_refused_and_the_collector_survives(collector: Collector) -> None:
    target = collector.grpc_target
    _assert_status([_batch(1)], grpc.StatusCode.INVALID_ARGUMENT, "Hello", target)
    _assert_status([_hello(), _hello()], grpc.StatusCode.INVALID_ARGUMENT, "only batches", target)
    _assert_status(
        [_hello(), _batch(1, ragged=True)], grpc.StatusCode.INVALID_ARGUMENT, "different lengths", target
    )
    _assert_status([_hello(), _batch(1, job_id="abc")], grpc.StatusCode.INVALID_ARGUMENT, "job_id", target)
    # An integer SQLite cannot hold is refused by name too (it used to fail the whole group's commit).
    huge = str(2**64)
    _assert_status([_hello(), _batch(1, job_id=huge)], grpc.StatusCode.INVALID_ARGUMENT, huge, target)
    _assert_status([_hello(), _batch(1, job_id="-5")], grpc.StatusCode.INVALID_ARGUMENT, "'-5'", target)
    bad_event = _batch(1)
    bad_event.batch.events.add(kind=pb.JobEvent.START).meta.job_id = "x9"
    _assert_status([_hello(), bad_event], grpc.StatusCode.INVALID_ARGUMENT, "job_id 'x9'", target)

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
