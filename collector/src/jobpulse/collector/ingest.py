"""gRPC servicer: hello, then batches; each batch is committed before it is acknowledged.

A stream is read ahead (up to READ_AHEAD batches waiting for their commit) so that one group commit
can carry several of its messages; each message is acknowledged, in order, once it is committed.
A malformed batch (BatchError) is refused with a Reject before that ack, nothing of it stored, and the
stream goes on; a malformed stream (no hello, a bad hello, a seq beyond 64 bits) ends with
INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
from jobpulse.collector.group_commit import GroupCommitter, Result
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.errors import StoreUnavailable
from jobpulse.collector.store.ingest import check_hello
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common.config import ConfigError
from jobpulse.common.validate import INT64_MAX, InvalidField
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

# Initial metadata of an accepted ingest stream: the collector's time, ms since the epoch.
TIME_METADATA = "jobpulse-time-ms"
log = logging.getLogger(__name__)

# Batches of one stream read from the wire but not yet committed. Bounds memory per agent (with the
# message size limit) and is how far one transaction can batch a stream's ticks.
READ_AHEAD = 64
# Largest agent message accepted (gRPC's max_receive_message_length, here set to gRPC's default).
# The agent's replay bundles stop once they pass 512 KiB (jobpulse.agent.stream.BUNDLE_BYTES), which
# leaves room for even a very large last batch; memory held per stream is bounded by READ_AHEAD
# batches plus one message.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def _loopback(listen: str) -> bool:
    """Whether a gRPC listen address (``host:port``, ``[v6]:port``, ``unix:path``) is reachable only
    from this machine. A host name other than localhost counts as reachable from elsewhere."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_ingest_auth(settings: CollectorSettings) -> None:
    """Refuse to serve gRPC ingest off loopback without a credential: anyone who reaches the port could
    send any node's data. ``allow_unauthenticated_ingest = true`` overrides it, with a warning.

    Raises:
        ConfigError: ``grpc_listen`` is not a loopback address and neither ``token`` nor ``tls_ca``
            (mutual TLS) is set.
    """
    if _loopback(settings.grpc_listen) or settings.token or settings.tls_ca:
        return
    if settings.allow_unauthenticated_ingest:
        log.warning(
            "UNAUTHENTICATED INGEST: gRPC listens on %s without a token or client certificates "
            "(allow_unauthenticated_ingest = true); anyone who can reach it can send data for any node",
            settings.grpc_listen,
        )
        return
    raise ConfigError(
        f"grpc_listen = {settings.grpc_listen!r} is not a loopback address, and neither `token` nor "
        "`tls_ca` (mutual TLS) is set: anyone who reaches the port could send data. Set `token` "
        "(the same in every agent.toml), or `tls_cert`/`tls_key`/`tls_ca`, or listen on 127.0.0.1; "
        "`allow_unauthenticated_ingest = true` accepts the risk"
    )


class IngestServicer(pb_grpc.IngestServicer):
    def __init__(
        self,
        store: SqliteStore,
        token: str = "",
        on_batches: Callable[[str, list[pb.Batch]], None] | None = None,
    ) -> None:
        self.store = store
        self.token = token
        # called once per agent message with the batches it stored (replays left out), after the commit
        self.on_batches = on_batches
        self.committer = GroupCommitter(store)

    def _token_problem(self, context: grpc.aio.ServicerContext) -> str | None:
        """None when the stream may proceed, else why not ("missing"/"wrong"); the token is never logged."""
        if not self.token:
            return None
        metadata = dict(context.invocation_metadata() or ())
        presented = str(metadata.get("authorization", ""))
        if not presented:
            return "missing"
        if not hmac.compare_digest(presented.encode(), f"Bearer {self.token}".encode()):
            return "wrong"
        return None

    async def Stream(
        self, request_iterator: AsyncIterator[pb.AgentMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CollectorMessage]:
        peer = context.peer()
        problem = self._token_problem(context)
        if problem is not None:
            log.warning("refused agent stream from %s: %s token", peer, problem)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong agent token")
        # Accepted: say so at once, with this collector's clock (`jobpulse-agent doctor` measures the
        # node's clock skew from it; agents ignore it). A stream that then sends nothing stores nothing.
        await context.send_initial_metadata(((TIME_METADATA, str(int(time.time() * 1000))),))
        first = await anext(aiter(request_iterator), None)
        if first is None:  # doctor's probe: the time again with the status (grpc may drop the headers
            # of a call that ends without a message)
            context.set_trailing_metadata(((TIME_METADATA, str(int(time.time() * 1000))),))
            return
        if first.WhichOneof("body") != "hello" or not first.hello.node:
            log.warning("refused stream from %s: first message is not a hello with a node name", peer)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a Hello with a node"
            )
        hello = first.hello
        try:
            check_hello(hello)
        except InvalidField as exc:
            log.warning("refused stream from %s: hello %s", peer, exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"hello: {exc}")
        node, stream_id, cluster = hello.node, hello.stream_id, hello.cluster
        try:
            last = await self.store.hello(hello)
        except StoreUnavailable as exc:  # logged once per condition by the store; the agent retries
            log.debug("stream from %s refused: %s", node, exc.reason)
            await context.abort(grpc.StatusCode.UNAVAILABLE, exc.reason)
            return
        log.info(
            "agent %s (%s, stream %s) connected from %s; resuming after seq %d",
            node,
            hello.agent_version,
            stream_id[:8],
            peer,
            last,
        )
        yield pb.CollectorMessage(ack=pb.Ack(seq=last))
        state = _StreamState()
        reader = asyncio.create_task(self._read(request_iterator, node, stream_id, cluster, state))
        unavailable: StoreUnavailable | None = None
        try:
            async for acked, stored, rejected in self._committed(state):
                if self.on_batches is not None and stored:
                    self.on_batches(node, stored)
                for seq, reason in rejected:  # before the ack that passes them
                    log.warning("refused batch %d of %s (stream %s): %s", seq, node, stream_id[:8], reason)
                    yield pb.CollectorMessage(reject=pb.Reject(seq=seq, reason=reason))
                yield pb.CollectorMessage(ack=pb.Ack(seq=acked))
        except StoreUnavailable as exc:
            unavailable = exc  # e.g. the disk is full: nothing was stored, the agent keeps it and retries
        finally:
            reader.cancel()
        if unavailable is not None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, unavailable.reason)
        if state.exception is not None:
            raise state.exception
        if state.refusal is not None:
            log.warning("refused stream from %s (%s): %s", node, peer, state.refusal)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, state.refusal)

    async def _read(
        self,
        requests: AsyncIterator[pb.AgentMessage],
        node: str,
        stream_id: str,
        cluster: str,
        state: _StreamState,
    ) -> None:
        """Read ahead: submit each message for commit as it arrives, up to READ_AHEAD batches waiting.

        Waiting for room before reading the next message is the flow control: a slow database slows
        this stream (gRPC stops granting the agent window), and nothing beyond READ_AHEAD batches of
        it is held here. Reading ahead lets one transaction carry several ticks of a stream.
        """
        try:
            async for message in requests:
                kind = message.WhichOneof("body")
                if kind == "batch":
                    batches: list[pb.Batch] = [message.batch]
                elif kind == "batches":
                    batches = list(message.batches.batches)
                else:
                    state.refusal = "only batches may follow the hello"
                    return
                beyond = next((b.seq for b in batches if b.seq > INT64_MAX), None)
                if beyond is not None:  # no seq SQLite cannot hold can be committed, not even refused
                    state.refusal = f"batch seq {beyond} is out of range (at most {INT64_MAX})"
                    return
                rejected: list[tuple[int, str]] = []
                future = self.committer.submit(node, stream_id, cluster, batches, rejected)
                state.pending.append((batches, future, dict(rejected)))
                state.batches += len(batches)
                state.wakeup.set()
                while state.batches >= READ_AHEAD:
                    state.room.clear()
                    await state.room.wait()
        except Exception as exc:  # the stream broke (a cancel is no Exception: it propagates): handed to the handler once the rest is acked
            state.exception = exc
        finally:
            state.finished = True
            state.wakeup.set()

    @staticmethod
    async def _committed(
        state: _StreamState,
    ) -> AsyncIterator[tuple[int, list[pb.Batch], list[tuple[int, str]]]]:
        """(highest seq committed, batches stored, (seq, reason) of batches refused) for each message,
        in order, once it is committed: one ack per message, as agents expect (acks are cumulative,
        so order is all that matters). A refused batch that was a replay (its seq already passed)
        is not refused again."""
        pending = state.pending
        while True:
            if not pending:
                if state.finished:
                    return
                state.wakeup.clear()
                await state.wakeup.wait()
                continue
            batches, future, rejects = pending[0]
            results = await future
            pending.popleft()
            state.batches -= len(batches)
            state.room.set()
            acked = 0
            stored: list[pb.Batch] = []
            refused: list[tuple[int, str]] = []
            for batch, (seq, new) in zip(batches, results, strict=True):
                acked = max(acked, seq)
                if not new:
                    continue
                if rejects and batch.seq in rejects:
                    refused.append((batch.seq, rejects[batch.seq]))
                else:
                    stored.append(batch)
            if batches:  # an empty Batches message gets no ack (nothing to acknowledge)
                yield acked, stored, refused


@dataclass
class _StreamState:
    """What one stream's reader and its ack loop share."""

    # each message: its batches, their commit, and the reason for each seq refused (stored as passed)
    pending: deque[tuple[list[pb.Batch], asyncio.Future[list[Result]], dict[int, str]]] = field(
        default_factory=deque
    )
    batches: int = 0  # in ``pending``
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)  # pending grew, or the reader ended
    room: asyncio.Event = field(default_factory=asyncio.Event)  # pending shrank
    finished: bool = False
    refusal: str | None = None  # a malformed stream: INVALID_ARGUMENT once the earlier messages are acked
    exception: BaseException | None = None
