"""D10 on the gRPC side: a collector whose disk is full refuses agent streams with UNAVAILABLE and a
reason, logs the condition once (not per retried batch), stores nothing half-way, and takes the same
batches once there is room again."""

from __future__ import annotations

import asyncio
import errno
import math
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc
from support import small_tmpfs, start_collector, stop


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "small", "4m") as mount:
        yield mount


def _batch(seq: int, rows: int) -> pb.AgentMessage:
    batch = pb.Batch(seq=seq)
    jobs = batch.jobs
    for i in range(rows):
        jobs.job_id.append("7")
        jobs.step.append("")
        jobs.time_ms.append(1_700_000_000_000 + seq * 100_000 + i)
        for column in JOB_SAMPLE_COLUMNS:
            getattr(jobs, column).append(float(i) if column != "mem_limit_bytes" else math.inf)
    return pb.AgentMessage(batch=batch)


async def _send(target: str, seqs: range, rows: int) -> tuple[list[int], grpc.StatusCode, str]:
    """Stream as the agent does: the hello, then batches only once the collector's first ack came."""
    acks: list[int] = []
    resumed = asyncio.Event()

    async def requests() -> AsyncIterator[pb.AgentMessage]:
        yield pb.AgentMessage(hello=pb.Hello(node="n1", cluster="c", stream_id="s1"))
        await resumed.wait()
        for seq in seqs:
            yield _batch(seq, rows)

    async with grpc.aio.insecure_channel(target) as channel:
        call = pb_grpc.IngestStub(channel).Stream(requests())
        try:
            async for message in call:
                if message.WhichOneof("body") == "ack":
                    acks.append(message.ack.seq)
                    resumed.set()
                    if acks[-1] == seqs[-1]:
                        call.cancel()
                        break
        except grpc.aio.AioRpcError as exc:
            return acks, exc.code(), exc.details() or ""
    return acks, grpc.StatusCode.OK, ""


def test_d10_full_disk_is_unavailable_logged_once_and_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    # the database on the small disk; the log elsewhere (a full disk would swallow it too)
    database = small_disk / "jobpulse.db"
    collector = start_collector(tmp_path / "collector", env={"JOBPULSE_DATABASE": str(database)})
    try:
        acks, code, _ = asyncio.run(_send(collector.grpc_target, range(1, 3), 10))
        assert code == grpc.StatusCode.OK and acks[-1] == 2
        filler = small_disk / "filler"
        with filler.open("wb", buffering=0) as out:  # the disk to its last byte
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        out.write(b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        before = collector.log.read_text()
        for _ in range(4):  # an agent retrying with backoff
            acks, code, details = asyncio.run(_send(collector.grpc_target, range(3, 9), 2000))
            assert code == grpc.StatusCode.UNAVAILABLE and "full" in details, (code, details)
            assert acks == []  # not even the resume point: nothing is acknowledged on a full disk
        logged = collector.log.read_text()[len(before) :]
        assert "Traceback" not in logged, logged[-3000:]
        assert logged.count("cannot be written") == 1, logged[-3000:]
        filler.unlink()
        acks, code, _ = asyncio.run(_send(collector.grpc_target, range(3, 9), 2000))
        assert code == grpc.StatusCode.OK and acks[-1] == 8
        db = sqlite3.connect(database)
        assert db.execute("SELECT count(*) FROM job_samples").fetchone()[0] == 2 * 10 + 6 * 2000
    finally:
        stop(collector.proc)
