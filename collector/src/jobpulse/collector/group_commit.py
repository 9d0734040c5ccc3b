"""Group commit: batches that arrive while a commit runs share the next transaction.

Every agent stream awaits its own batch's commit before it reads its next message (so a slow
database slows the streams through gRPC flow control, and at most one batch per connected agent
waits here: memory is bounded by the number of agents). The writer takes everything waiting, up
to ``max_group`` batches, and stores it in one transaction; each batch is acknowledged only after
that transaction committed.
"""

from __future__ import annotations

import asyncio
import logging

from jobpulse.collector.store import ingest
from jobpulse.collector.store.errors import BatchError
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)

Result = tuple[int, bool]


class GroupCommitter:
    def __init__(self, store: SqliteStore, max_group: int = 512) -> None:
        self.store = store
        self.max_group = max_group
        self._waiting: list[tuple[ingest.Pending, asyncio.Future[Result]]] = []
        self._task: asyncio.Task[None] | None = None
        self._known: dict[tuple[str, str], int] = {}  # last stored seq per stream (only writer)

    async def submit_many(
        self, node: str, stream_id: str, cluster: str, batches: list[pb.Batch]
    ) -> list[Result]:
        """Store consecutive batches of one stream, in order; all are checked before any is queued.

        Raises:
            BatchError: a malformed batch (its ``seq`` attribute names it); none of them is stored.
        """
        prepared = []
        for batch in batches:
            try:
                prepared.append(ingest.prepare(node, stream_id, cluster, batch))
            except BatchError as exc:
                exc.seq = batch.seq
                raise
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Result]] = [loop.create_future() for _ in prepared]
        self._waiting.extend(zip(prepared, futures, strict=True))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[: self.max_group], self._waiting[self.max_group :]
            items = [p for p, _ in group]
            try:
                results = await self._write(items)
            except Exception as exc:
                if len(group) == 1:
                    self._fail(group, exc)
                    continue
                # One bad batch must not sink the others: store them one by one.
                for one in group:
                    try:
                        (single,) = await self._write([one[0]])
                        self._resolve(one[1], single)
                    except Exception as exc:
                        log.exception("storing batch %d of %s failed", one[0].batch.seq, one[0].node)
                        if not one[1].done():
                            one[1].set_exception(exc)
                continue
            for (_, future), result in zip(group, results, strict=True):
                self._resolve(future, result)

    async def _write(self, items: list[ingest.Pending]) -> list[Result]:
        return await self.store.write(lambda db: ingest.ingest_many(db, items, self._known))

    @staticmethod
    def _resolve(future: asyncio.Future[Result], result: Result) -> None:
        if not future.done():  # the stream may have gone away meanwhile
            future.set_result(result)

    @staticmethod
    def _fail(group: list[tuple[ingest.Pending, asyncio.Future[Result]]], exc: Exception) -> None:
        for pending, future in group:
            log.error("storing batch %d of %s failed: %s", pending.batch.seq, pending.node, exc)
            if not future.done():
                future.set_exception(exc)
