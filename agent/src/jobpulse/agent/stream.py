"""The agent's side of the bidirectional gRPC stream: hello, batches from the spool, acks back.

Owns the channel, reconnects with exponential backoff and jitter, and after every (re)connect
resumes from the collector's last committed sequence number, replaying the spool in order (the
collector deduplicates, so a batch sent twice is stored once). A batch the collector refuses comes
back as a Reject before the ack that passes it: it is set aside (spool/rejected/), reported as a gap,
and the stream goes on. At most ``max_in_flight`` batches are
unacknowledged on the wire: a slow collector database therefore slows us down instead of filling
buffers; the spool on disk absorbs the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from jobpulse.agent.spool import Spool
from jobpulse.common import validate
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64  # unacked batches on the wire; the collector's pace bounds ours
BUNDLE_BYTES = 512 * 1024  # replayed batches per message, by size (gRPC's default limit is 4 MiB)
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0

# A silently dead collector is noticed within keepalive_time + keepalive_timeout = 30 s.
KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # grpc-core >= 1.6x times out an unanswered ping after ping_timeout (default 60 s), not after
    # keepalive_timeout: set both.
    ("grpc.http2.ping_timeout_ms", 10_000),
]


@dataclass
class ClientTls:
    """TLS for the channel: ``ca`` verifies the collector (empty: system roots); cert+key for mTLS."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca), private_key=read(self.key), certificate_chain=read(self.cert)
        )


def backoff_delays(first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX) -> Iterator[float]:
    """Exponential backoff with +-20 % jitter so a cluster's agents do not reconnect in lockstep."""
    delay = first
    while True:
        yield delay * random.uniform(0.8, 1.2)
        delay = min(delay * 2, cap)


class StreamClient:
    def __init__(
        self,
        target: str,
        spool: Spool,
        hello: Callable[[], pb.Hello],
        token: str = "",
        on_control: Callable[[pb.Control], None] | None = None,
        tls: ClientTls | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.target = target
        self.spool = spool
        self.hello = hello
        self.token = token
        self.on_control = on_control
        self.tls = tls
        self.max_in_flight = max_in_flight
        self.acked = 0
        self.sent = 0  # highest seq handed to gRPC on the current connection
        self.connected = asyncio.Event()
        self._acks = asyncio.Event()
        self._stopping = asyncio.Event()

    async def _requests(self, resumed: asyncio.Event) -> AsyncIterator[pb.AgentMessage]:
        yield pb.AgentMessage(hello=self.hello())
        await resumed.wait()  # the collector's first ack says where to resume
        sent = self.sent = self.acked
        while not self._stopping.is_set():
            room = self.max_in_flight - (sent - self.acked)
            if room <= 0:
                self._acks.clear()
                await self._acks.wait()
                continue
            self.spool.changed.clear()
            records = self.spool.pending(sent, limit=room)
            if not records:
                await self.spool.changed.wait()
                continue
            if len(records) == 1:
                sent = self.sent = records[0][0]
                yield pb.AgentMessage(batch=pb.Batch.FromString(records[0][1]))
                continue
            # A backlog (replay): several batches per message, far cheaper for both ends.
            bundle, size = pb.Batches(), 0
            for seq, payload in records:
                bundle.batches.append(pb.Batch.FromString(payload))
                size += len(payload)
                sent = self.sent = seq
                if size >= BUNDLE_BYTES:
                    yield pb.AgentMessage(batches=bundle)
                    bundle, size = pb.Batches(), 0
            if bundle.batches:
                yield pb.AgentMessage(batches=bundle)

    def _channel(self) -> grpc.aio.Channel:
        if self.tls is not None:
            return grpc.aio.secure_channel(self.target, self.tls.credentials(), options=KEEPALIVE_OPTIONS)
        return grpc.aio.insecure_channel(self.target, options=KEEPALIVE_OPTIONS)

    async def _run_once(self) -> None:
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else ()
        async with self._channel() as channel:
            stub = pb_grpc.IngestStub(channel)
            resumed = asyncio.Event()
            call = stub.Stream(self._requests(resumed), metadata=metadata)
            async for message in call:
                kind = message.WhichOneof("body")
                if kind == "ack":
                    if not resumed.is_set():
                        # Resume point; lower than ours only if the collector lost its database.
                        self.acked = message.ack.seq
                        self.spool.skip_past(message.ack.seq)
                        resumed.set()
                        self.connected.set()
                        log.info("connected to %s; collector has up to seq %d", self.target, self.acked)
                    elif message.ack.seq > self.acked:
                        self.acked = message.ack.seq
                    self.spool.ack(message.ack.seq)
                    self._acks.set()
                elif kind == "reject":
                    # Before the ack that passes it: keep a copy aside and count it as a gap; the
                    # ack then trims it, so it is never sent again.
                    reject = message.reject
                    kept = self.spool.reject(reject.seq, reject.reason)
                    log.error(
                        "collector %s refused batch %d (%s); kept in %s and reported as a gap",
                        self.target, reject.seq, validate.safe_for_log(reject.reason, 300), kept,
                    )  # fmt: skip
                elif kind == "control" and self.on_control is not None:
                    self.on_control(message.control)

    async def run(self) -> None:
        """Stream until stop(); never raises for network trouble."""
        delays = backoff_delays()
        while not self._stopping.is_set():
            try:
                await self._run_once()
                delays = backoff_delays()
            except grpc.aio.AioRpcError as exc:
                if self.connected.is_set():
                    delays = backoff_delays()  # it worked for a while: start over at the short delay
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    log.error("collector %s refused our token: %s", self.target, exc.details())
                else:
                    log.warning("stream to %s broke: %s %s", self.target, exc.code().name, exc.details())
            self.connected.clear()
            self._acks.set()
            if self._stopping.is_set():
                break
            delay = next(delays)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    @property
    def in_flight(self) -> int:
        """Batches sent on this connection and not yet acknowledged (at most max_in_flight)."""
        return max(0, self.sent - self.acked) if self.connected.is_set() else 0

    def stop(self) -> None:
        self._stopping.set()
        self.spool.changed.set()
        self._acks.set()
