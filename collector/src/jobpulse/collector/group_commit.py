"""Group commit: batches that arrive while a commit runs share the next transaction.

Every agent stream has at most ``IngestServicer`` read-ahead batches waiting here (the servicer stops
reading its stream until they are committed, so a slow database slows the streams through gRPC flow
control, and memory is bounded by agents x read-ahead). Messages are grouped as they arrive: each
group's rows are staged on the event loop (store/stage.py) until it holds ``max_rows`` job rows (whole
messages, so it may pass that by one message); the writer stores the oldest group in one transaction,
and each message is acknowledged only after that transaction committed.

Why groups matter for SQLite: a transaction writes every B-tree page it touched to the WAL once. One
tick of 200 nodes touches ~one job_samples leaf page per series whatever it holds, so a group that
carries several ticks per series costs little more than one that carries a single tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from jobpulse.collector.store import ingest
from jobpulse.collector.store.errors import BatchError, StoreUnavailable
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.collector.store.stage import Stage
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)

Result = tuple[int, bool]  # (acknowledged seq, stored?) per batch
Entry = tuple[list[ingest.Pending], "asyncio.Future[list[Result]]"]


@dataclass
class _Group:
    """The messages of one future transaction, their rows staged as they arrive (store/stage.py)."""

    stage: Stage = field(default_factory=Stage)
    entries: list[Entry] = field(default_factory=list)

    @property
    def items(self) -> list[ingest.Pending]:
        return [p for entry_items, _ in self.entries for p in entry_items]


class GroupCommitter:
    def __init__(self, store: SqliteStore, max_rows: int = 50_000) -> None:
        self.store = store
        self.max_rows = max_rows  # job rows per transaction (a group takes at least one message)
        self._groups: deque[_Group] = deque()  # oldest first; only the last one still takes messages
        self._task: asyncio.Task[None] | None = None
        self._known: dict[tuple[str, str], int] = {}  # last stored seq per stream (only writer)

    def submit(
        self,
        node: str,
        stream_id: str,
        cluster: str,
        batches: list[pb.Batch],
        rejected: list[tuple[int, str]] | None = None,
    ) -> asyncio.Future[list[Result]]:
        """Queue consecutive batches of one stream (one agent message), in order; all are checked first.

        Returns a future with one result per batch, set once they are committed. With ``rejected``
        given, a malformed batch does not stop the others: nothing of it is stored, but its seq is
        committed like an empty batch's (so later batches are not mistaken for it, and a replay of it
        is acknowledged), and ``(seq, reason)`` is appended to ``rejected``.

        Raises:
            BatchError: without ``rejected``, a malformed batch (its ``seq`` attribute names it); none
                of them is queued.
        """
        prepared = []
        for batch in batches:
            try:
                prepared.append(ingest.prepare(node, stream_id, cluster, batch))
            except BatchError as exc:
                exc.seq = batch.seq
                if rejected is None:
                    raise
                rejected.append((batch.seq, str(exc)))
                prepared.append(ingest.prepare(node, stream_id, cluster, pb.Batch(seq=batch.seq)))
        last = self._groups[-1] if self._groups else None
        group = last if last is not None and last.stage.job_rows < self.max_rows else _Group()
        group.stage.add(prepared)  # on failure it rolls back: the group stays as it was
        if group is not last:
            self._groups.append(group)  # queued only once it holds a message
        # The rows live in the stage now. Freed here, the tuples die young instead of outliving a
        # garbage collection or two (each would traverse them again) while the group waits, and
        # the group's rows are not held twice.
        for p in prepared:
            p.drop_rows()
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        group.entries.append((prepared, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return future

    async def _run(self) -> None:
        while self._groups:
            group = self._groups.popleft()  # from here on, nothing adds to it
            items = group.items
            started = time.perf_counter()
            try:
                results = await self._write(items, group.stage)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "group commit: %d messages, %d batches, %d job rows in %.1f ms",
                        len(group.entries),
                        len(items),
                        group.stage.job_rows,
                        (time.perf_counter() - started) * 1000,
                    )
            except asyncio.CancelledError:
                raise  # the writer may still hold the stage; it closes it itself (stage.load)
            except Exception as exc:
                group.stage.close()  # the write is over; if it failed before load(), nothing else will
                if len(items) == 1 or isinstance(exc, StoreUnavailable):  # a full disk fails them all
                    self._fail(group.entries, exc)
                else:
                    await self._one_by_one(group.entries)
                continue
            start = 0
            for entry_items, future in group.entries:
                end = start + len(entry_items)
                if not future.done():  # the stream may have gone away meanwhile
                    future.set_result(results[start:end])
                start = end

    async def _one_by_one(self, group: list[Entry]) -> None:
        """One bad batch must not sink the others: store them singly. A stream stops at its first
        failure (storing a later seq would make the failed one look like a replay, and lose it)."""
        failed: set[tuple[str, str]] = set()
        for entry_items, future in group:
            results: list[Result] = []
            error: Exception | None = None
            for pending in entry_items:
                if (pending.node, pending.stream_id) in failed:
                    error = RuntimeError("an earlier batch of this stream failed")
                    break
                try:
                    # its rows were dropped once staged (submit): made again from the batch
                    again = ingest.prepare(pending.node, pending.stream_id, pending.cluster, pending.batch)
                    results.extend(await self._write([again]))
                except Exception as exc:
                    log.exception("storing batch %d of %s failed", pending.batch.seq, pending.node)
                    failed.add((pending.node, pending.stream_id))
                    error = exc
                    break
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(results)

    async def _write(self, items: list[ingest.Pending], staged: Stage | None = None) -> list[Result]:
        return await self.store.ingest_group(items, self._known, staged)

    @staticmethod
    def _fail(group: list[Entry], exc: Exception) -> None:
        for entry_items, future in group:
            for pending in entry_items:
                if not isinstance(exc, StoreUnavailable):  # the store logs that once per condition
                    log.error("storing batch %d of %s failed: %s", pending.batch.seq, pending.node, exc)
            if not future.done():
                future.set_exception(exc)
