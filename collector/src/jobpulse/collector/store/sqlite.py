"""SQLite store: one writer thread (the only writer in the process), WAL, readers on their own connections.

The ingest hot path (store/ingest.py) moves each group of batches, staged in memory by the event loop
(store/stage.py), into the tables in one transaction; queries live in modules per concern (jobs.py,
samples.py) as plain functions of a connection, and this class runs them on
the right thread.

The database, its -wal and -shm files (SQLite gives them the database's mode) are 0600 and a directory
created for them 0700, whatever the umask: they hold password hashes, key digests and session ids.
A full disk (SQLITE_FULL, ENOSPC) is raised as :class:`StoreFull` from :meth:`SqliteStore._read` and
:meth:`SqliteStore._write` (and so from every named method), and logged once when it starts and once
when it ends, not per refused call.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.nodes import NodeStatus
from jobpulse.collector.domain.runs import JobRun, RunScope
from jobpulse.collector.store import ingest, jobs, nodes
from jobpulse.collector.store.base import Store, UsageViewStore
from jobpulse.collector.store.errors import BatchError, StoreFull, StoreUnavailable
from jobpulse.collector.store.ingest import Pending
from jobpulse.collector.store.migrations import migrate
from jobpulse.collector.store.sqlite_accounts import SqliteAccounts
from jobpulse.collector.store.sqlite_config import SqliteConfig
from jobpulse.collector.store.sqlite_jobs import SqliteJobs
from jobpulse.collector.store.sqlite_upkeep import SqliteUpkeep
from jobpulse.collector.store.sqlite_usage import SqliteUsage
from jobpulse.collector.store.sqlite_usage_view import SqliteUsageView
from jobpulse.collector.store.stage import Stage
from jobpulse.common import statefile
from jobpulse.proto.v1 import ingest_pb2 as pb

T = TypeVar("T")

__all__ = ["BatchError", "SqliteStore", "StoreFull", "StoreUnavailable", "connect"]

log = logging.getLogger(__name__)

SQLITE_FULL = 13


def disk_full(exc: BaseException) -> str | None:
    """Why the database is full when ``exc`` (or an exception it was raised while handling: a ROLLBACK
    after SQLite already rolled back) is SQLITE_FULL or ENOSPC/EDQUOT; None otherwise."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, sqlite3.Error) and (
            (getattr(seen, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_FULL
            or "database or disk is full" in str(seen)
        ):
            return str(seen)
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return seen.strerror or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _name_os_thread(name: str) -> None:
    """Give the current thread an OS-visible name (``top -H``, /proc/<pid>/task/*/comm): Python's own
    thread names stay inside Python. Linux only; best effort."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.row_factory = sqlite3.Row
    return db


class SqliteStore(SqliteJobs, SqliteAccounts, SqliteConfig, SqliteUpkeep, SqliteUsage, SqliteUsageView):
    """All database access of the collector. Writes run on the single writer thread, reads on a pool."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer_pool = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="sqlite-writer",
            initializer=_name_os_thread,
            initargs=("sqlite-writer",),
        )
        self._reader_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._writer: sqlite3.Connection | None = None
        self._full: str | None = None  # why the store is full, while it is
        self._refused = 0  # calls refused since it became full

    # -- lifecycle -------------------------------------------------------
    def open(self) -> None:
        statefile.private_dir(self.path.parent)
        loose = statefile.loose_mode(self.path.parent)
        if loose is not None:
            log.warning(
                "%s is mode %04o: other local users can list it (0700 is safer)", self.path.parent, loose
            )
        for path in (
            self.path,
            self.path.with_name(self.path.name + "-wal"),
            self.path.with_name(self.path.name + "-shm"),
        ):
            if path == self.path or path.exists():
                try:
                    statefile.create_private(path)
                except PermissionError as exc:  # not ours: SQLite may still open it
                    log.warning("cannot make %s private (mode 0600): %s", path, exc)
        self._writer = connect(self.path)
        # The ingest move's ORDER BY (store/ingest.py) sorts a whole group (~10 MB for 50,000 job
        # rows), more than the page cache holds: in memory instead of files in /var/tmp, so no disk
        # writes on the hot path and no failure where tmp is read-only. This covers all the writer's
        # work (rollups and retention sort less than a group); a reader's big sort still spills to disk.
        self._writer.execute("PRAGMA temp_store=MEMORY")
        migrate(self._writer)

    def close(self) -> None:
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        if self._writer is not None:
            self._writer.close()

    # -- the connections: private, so that only the store's own named methods run SQL ---------------
    def _writer_db(self) -> sqlite3.Connection:
        assert self._writer is not None, "store not opened"
        return self._writer

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            self._local.db = db
        return db

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(writer connection)`` on the writer thread.

        Raises:
            StoreFull: the disk is full; nothing of ``fn`` was committed.
        """
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._writer_pool, _settled, fn, self._writer_db()
            )
        except Exception as exc:
            unavailable = self._unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc
        self._available()
        return result

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(reader connection)`` on a reader thread (WAL: never blocked by the writer).

        Raises:
            StoreFull: a temporary file of the query could not be written for lack of space.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._reader_pool, lambda: fn(self._reader())
            )
        except Exception as exc:
            unavailable = self._unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    def _unavailable(self, exc: Exception) -> StoreUnavailable | None:
        """``exc`` as a StoreFull when it is a full disk, logged once per condition (None otherwise)."""
        reason = disk_full(exc)
        if reason is None:
            return None
        if self._full is None:
            log.error(
                "database %s cannot be written: %s; writes answer 503 (ingest is not acknowledged, agents "
                "keep their spools) until space is freed",
                self.path,
                reason,
            )
            self._full = reason
        self._refused += 1
        return StoreFull(f"the database's disk is full ({reason}); nothing was stored")

    def _available(self) -> None:
        if self._full is not None:
            log.warning(
                "database %s is writable again (%d calls refused while it was full)", self.path, self._refused
            )
            self._full = None
            self._refused = 0

    # -- ingest ----------------------------------------------------------
    async def hello(self, hello: pb.Hello) -> int:
        return await self._write(lambda db: ingest.record_hello(db, hello))

    async def ingest(self, node: str, stream_id: str, cluster: str, batch: pb.Batch) -> tuple[int, bool]:
        return await self._write(lambda db: ingest.ingest_batch(db, node, stream_id, cluster, batch))

    def ingest_group(
        self, items: list[Pending], known: dict[tuple[str, str], int], staged: Stage | None = None
    ) -> Awaitable[list[tuple[int, bool]]]:
        """Store a group commit's batches in one transaction (store/ingest.py ``ingest_many``): one result
        per batch. The hot path: a plain function returning the write's coroutine, no frame of its own."""
        return self._write(lambda db: ingest.ingest_many(db, items, known, staged))

    # -- queries ---------------------------------------------------------
    async def get_job(self, job_id: int | JobId) -> JobRun | None:
        return await self._read(lambda db: jobs.get_job(db, job_id))

    async def run_scope(self, run: JobRun) -> RunScope:
        return await self._read(lambda db: jobs.run_scope(db, run))

    async def nodes(self, down_after: float, now: float) -> list[NodeStatus]:
        """Nodes with their state "up"/"down" (silent for more than ``down_after`` s) and last_seen."""
        return await self._read(lambda db: nodes.list_nodes(db, now, down_after))


def _settled(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """``fn(db)``; when it fails, a transaction it left open is rolled back, so the next write can BEGIN."""
    try:
        return fn(db)
    except BaseException:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                log.warning("could not roll back after a failed write: %s", exc)
        raise


def _conforms(store: SqliteStore) -> Store:
    """mypy checks here that SqliteStore implements the whole storage protocol."""
    return store


def _conforms_usage_view(store: SqliteStore) -> UsageViewStore:
    """And the usage view's protocol (services/usage_view.py)."""
    return store
