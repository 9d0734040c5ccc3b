"""gRPC servicer: hello, then batches; each batch is committed before it is acknowledged."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable

import grpc
from jobpulse.collector.group_commit import GroupCommitter
from jobpulse.collector.store.sqlite import BatchError, SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class IngestServicer(pb_grpc.IngestServicer):
    def __init__(
        self, store: SqliteStore, token: str = "", on_batch: Callable[[str, pb.Batch], None] | None = None
    ) -> None:
        self.store = store
        self.token = token
        self.on_batch = on_batch
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
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if first.WhichOneof("body") != "hello" or not first.hello.node:
            log.warning("refused stream from %s: first message is not a hello with a node name", peer)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a Hello with a node"
            )
        hello = first.hello
        node, stream_id, cluster = hello.node, hello.stream_id, hello.cluster
        last = await self.store.hello(hello)
        log.info(
            "agent %s (%s, stream %s) connected from %s; resuming after seq %d",
            node,
            hello.agent_version,
            stream_id[:8],
            peer,
            last,
        )
        yield pb.CollectorMessage(ack=pb.Ack(seq=last))
        async for message in request_iterator:
            kind = message.WhichOneof("body")
            if kind == "batch":
                batches: list[pb.Batch] = [message.batch]
            elif kind == "batches":
                batches = list(message.batches.batches)
            else:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only batches may follow the hello")
            try:
                # Awaiting the commit before reading the next message is the flow control: a slow
                # database slows this stream, and nothing of it is buffered here meanwhile.
                results = await self.committer.submit_many(node, stream_id, cluster, batches)
            except BatchError as exc:
                log.warning("refused batch %d from %s: %s", exc.seq, node, exc)
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"batch {exc.seq}: {exc}")
            if self.on_batch is not None:
                for batch, (_, stored) in zip(batches, results, strict=True):
                    if stored:
                        self.on_batch(node, batch)
            if results:
                yield pb.CollectorMessage(ack=pb.Ack(seq=max(acked for acked, _ in results)))
