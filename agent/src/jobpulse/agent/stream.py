"""The agent's side of the bidirectional gRPC stream: hello, batches from the spool, acks back.

Owns the channel, reconnects with exponential backoff and jitter, and resends
everything unacknowledged after a reconnect (the collector deduplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable

import grpc
from jobpulse.agent.spool import Spool
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64  # unacked batches on the wire; the collector's pace bounds ours


class StreamClient:
    def __init__(
        self,
        target: str,
        spool: Spool,
        hello: Callable[[], pb.Hello],
        token: str = "",
        on_control: Callable[[pb.Control], None] | None = None,
    ) -> None:
        self.target = target
        self.spool = spool
        self.hello = hello
        self.token = token
        self.on_control = on_control
        self.acked = 0
        self.connected = asyncio.Event()
        self._stopping = asyncio.Event()

    async def _requests(self, window: asyncio.Semaphore) -> AsyncIterator[pb.AgentMessage]:
        yield pb.AgentMessage(hello=self.hello())
        sent = self.acked
        while not self._stopping.is_set():
            records = self.spool.pending(sent)
            if not records:
                self.spool.changed.clear()
                await self.spool.changed.wait()
                continue
            for seq, payload in records:
                await window.acquire()
                batch = pb.Batch.FromString(payload)
                yield pb.AgentMessage(batch=batch)
                sent = seq

    async def _run_once(self) -> None:
        options = [
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else ()
        async with grpc.aio.insecure_channel(self.target, options=options) as channel:
            stub = pb_grpc.IngestStub(channel)
            window = asyncio.Semaphore(MAX_IN_FLIGHT)
            call = stub.Stream(self._requests(window), metadata=metadata)
            async for message in call:
                kind = message.WhichOneof("body")
                if kind == "ack":
                    self.connected.set()
                    released = max(0, message.ack.seq - self.acked)
                    if message.ack.seq > self.acked:
                        self.acked = message.ack.seq
                    self.spool.ack(message.ack.seq)
                    for _ in range(min(released, MAX_IN_FLIGHT)):
                        window.release()
                elif kind == "control" and self.on_control is not None:
                    self.on_control(message.control)

    async def run(self) -> None:
        """Stream until stop(); never raises for network trouble."""
        delay = 0.5
        while not self._stopping.is_set():
            try:
                await self._run_once()
                delay = 0.5
            except grpc.aio.AioRpcError as exc:
                self.connected.clear()
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    log.error("collector refused our token: %s", exc.details())
                else:
                    log.warning("stream to %s broke: %s %s", self.target, exc.code().name, exc.details())
            self.connected.clear()
            if self._stopping.is_set():
                break
            jittered = delay * random.uniform(0.8, 1.2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=jittered)
            delay = min(delay * 2, 30.0)

    def stop(self) -> None:
        self._stopping.set()
        self.spool.changed.set()
