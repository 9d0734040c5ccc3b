"""SQLite store: one writer thread (the only writer in the process), WAL, readers on their own connections.

The ingest hot path uses plain ``executemany`` inside one transaction per
batch; sqlite-utils serves schema inspection and admin queries.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from jobpulse.collector.store.migrations import (
    GPU_SAMPLE_COLUMNS,
    JOB_SAMPLE_COLUMNS,
    NODE_SAMPLE_COLUMNS,
    migrate,
)
from jobpulse.proto.v1 import ingest_pb2 as pb

T = TypeVar("T")

_JOB_INSERT = (
    f"INSERT OR IGNORE INTO job_samples (job_id, node, step, ts, {', '.join(JOB_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in JOB_SAMPLE_COLUMNS)})"
)
_NODE_INSERT = (
    f"INSERT OR IGNORE INTO node_samples (node, ts, {', '.join(NODE_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, {', '.join('?' for _ in NODE_SAMPLE_COLUMNS)})"
)
_GPU_INSERT = (
    f"INSERT OR IGNORE INTO gpu_samples (node, uuid, ts, job_id, {', '.join(GPU_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in GPU_SAMPLE_COLUMNS)})"
)


class BatchError(ValueError):
    """A batch that cannot be stored as sent (ragged columns, non-numeric job id)."""


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.row_factory = sqlite3.Row
    return db


def _job_id(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise BatchError(f"job_id {value!r} is not a Slurm job number") from exc


def _check_columns(message: Any, names: Iterable[str], label: str) -> int:
    lengths = {name: len(getattr(message, name)) for name in names}
    distinct = set(lengths.values())
    if len(distinct) > 1:
        raise BatchError(f"{label}: columns have different lengths {lengths}")
    return distinct.pop() if distinct else 0


class SqliteStore:
    """All database access of the collector. Async methods run on the single writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._writer: sqlite3.Connection | None = None
        self.listeners: list[Callable[[str, pb.Batch], None]] = []

    # -- lifecycle -------------------------------------------------------
    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = connect(self.path)
        migrate(self._writer)

    def close(self) -> None:
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        if self._writer is not None:
            self._writer.close()

    @property
    def writer(self) -> sqlite3.Connection:
        assert self._writer is not None, "store not opened"
        return self._writer

    def reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            self._local.db = db
        return db

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn, self.writer)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, lambda: fn(self.reader()))

    # -- ingest ----------------------------------------------------------
    def hello_sync(self, hello: pb.Hello) -> int:
        """Record the node; return the highest sequence already stored for its stream."""
        now = time.time()
        gpus = json.dumps(
            [
                {
                    "uuid": g.uuid,
                    "name": g.name,
                    "memory_total_bytes": g.memory_total_bytes,
                    "pci_bus_id": g.pci_bus_id,
                    "index": g.index,
                    "parent_uuid": g.parent_uuid,
                }
                for g in hello.gpus
            ]
        )
        db = self.writer
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                """INSERT INTO nodes (name, cluster, agent_version, cpus, memory_bytes, gpus, boot_time,
                                      first_seen, last_seen)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET cluster=excluded.cluster, agent_version=excluded.agent_version,
                     cpus=excluded.cpus, memory_bytes=excluded.memory_bytes, gpus=excluded.gpus,
                     boot_time=excluded.boot_time, last_seen=excluded.last_seen""",
                (
                    hello.node,
                    hello.cluster,
                    hello.agent_version,
                    hello.cpus,
                    hello.memory_bytes,
                    gpus,
                    hello.boot_time,
                    now,
                    now,
                ),
            )
            row = db.execute(
                "SELECT last_seq FROM agent_streams WHERE node = ? AND stream_id = ?",
                (hello.node, hello.stream_id),
            ).fetchone()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(row[0]) if row else 0

    def ingest_sync(self, node: str, stream_id: str, cluster: str, batch: pb.Batch) -> tuple[int, bool]:
        """Store one batch in one transaction. Returns (acked seq, stored?); a replay is acked, not stored.

        Raises:
            BatchError: malformed batch; nothing of it is stored.
        """
        jobs = batch.jobs
        n_jobs = _check_columns(jobs, ("job_id", "step", "time_ms", *JOB_SAMPLE_COLUMNS), "jobs")
        gpus = batch.gpus
        _check_columns(gpus, ("uuid", "time_ms", "job_id", *GPU_SAMPLE_COLUMNS), "gpus")
        job_ids = [_job_id(j) for j in jobs.job_id] if n_jobs else []
        gpu_jobs = [_job_id(j) if j else None for j in gpus.job_id]
        db = self.writer
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT last_seq FROM agent_streams WHERE node = ? AND stream_id = ?", (node, stream_id)
            ).fetchone()
            last = int(row[0]) if row else 0
            if batch.seq <= last:
                db.execute("COMMIT")
                return last, False
            if n_jobs:
                db.executemany(
                    _JOB_INSERT,
                    zip(
                        job_ids,
                        [node] * n_jobs,
                        jobs.step,
                        jobs.time_ms,
                        *(getattr(jobs, c) for c in JOB_SAMPLE_COLUMNS),
                        strict=True,
                    ),
                )
            if batch.node:
                db.executemany(
                    _NODE_INSERT,
                    ((node, s.time_ms, *(getattr(s, c) for c in NODE_SAMPLE_COLUMNS)) for s in batch.node),
                )
                latest = batch.node[-1]
                db.executemany(
                    """INSERT INTO filesystems (node, mountpoint, device, fstype, total_bytes, used_bytes, ts)
                       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(node, mountpoint) DO UPDATE SET
                       device=excluded.device, fstype=excluded.fstype, total_bytes=excluded.total_bytes,
                       used_bytes=excluded.used_bytes, ts=excluded.ts""",
                    (
                        (node, f.mountpoint, f.device, f.fstype, f.total_bytes, f.used_bytes, latest.time_ms)
                        for f in latest.filesystems
                    ),
                )
            if gpus.uuid:
                db.executemany(
                    _GPU_INSERT,
                    zip(
                        [node] * len(gpus.uuid),
                        gpus.uuid,
                        gpus.time_ms,
                        gpu_jobs,
                        *(getattr(gpus, c) for c in GPU_SAMPLE_COLUMNS),
                        strict=True,
                    ),
                )
            for event in batch.events:
                self._apply_event(db, node, cluster, event)
            now = time.time()
            for gap in batch.gaps:
                db.execute(
                    "INSERT INTO gaps (node, stream_id, from_ms, to_ms, batches, bytes, received)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (node, stream_id, gap.from_ms, gap.to_ms, gap.batches, gap.bytes, now),
                )
            db.execute(
                "INSERT INTO agent_streams (node, stream_id, last_seq, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(node, stream_id) DO UPDATE SET last_seq=excluded.last_seq, updated=excluded.updated",
                (node, stream_id, batch.seq, now),
            )
            db.execute("UPDATE nodes SET last_seen = ? WHERE name = ?", (now, node))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return batch.seq, True

    def _apply_event(self, db: sqlite3.Connection, node: str, cluster: str, event: pb.JobEvent) -> None:
        meta = event.meta
        job_id = _job_id(meta.job_id)
        cluster = meta.cluster or cluster
        now = time.time()
        if event.kind == pb.JobEvent.START:
            start = meta.start_time or event.time_ms // 1000
            db.execute(
                """INSERT INTO jobs (job_id, cluster, user_name, user_id, group_name, group_id, account, partition,
                     qos, job_name, num_nodes, num_tasks, cpus, gpus_per_node, mem_requested_bytes, nodes, nodelist,
                     start_time, is_running, state, source, updated)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'RUNNING', ?, ?)
                   ON CONFLICT(cluster, job_id, start_time) DO NOTHING""",
                (
                    job_id,
                    cluster,
                    meta.user,
                    meta.uid,
                    meta.group,
                    meta.gid,
                    meta.account,
                    meta.partition,
                    meta.qos,
                    meta.job_name,
                    meta.num_nodes or None,
                    meta.num_tasks or None,
                    meta.cpus_on_node or None,
                    len(meta.gpus),
                    meta.mem_requested_bytes or None,
                    json.dumps([node]),
                    meta.nodelist or node,
                    start,
                    meta.source,
                    now,
                ),
            )
        elif event.kind == pb.JobEvent.STOP:
            stop = meta.end_time or event.time_ms // 1000
            row = db.execute(
                "SELECT run_id FROM jobs WHERE cluster = ? AND job_id = ? ORDER BY start_time DESC LIMIT 1",
                (cluster, job_id),
            ).fetchone()
            if row is None:
                db.execute(
                    """INSERT INTO jobs (job_id, cluster, nodes, nodelist, start_time, stop_time, is_running,
                         state, exit_code, source, updated) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)""",
                    (
                        job_id,
                        cluster,
                        json.dumps([node]),
                        node,
                        meta.start_time or stop,
                        stop,
                        meta.state or "COMPLETED",
                        meta.exit_code,
                        meta.source,
                        now,
                    ),
                )
            else:
                db.execute(
                    """UPDATE jobs SET stop_time = ?, is_running = 0, state = ?, exit_code = ?, updated = ?
                       WHERE run_id = ? AND is_running = 1""",
                    (stop, meta.state or "COMPLETED", meta.exit_code, now, row[0]),
                )

    async def hello(self, hello: pb.Hello) -> int:
        return await self.write(lambda _db: self.hello_sync(hello))

    async def ingest(self, node: str, stream_id: str, cluster: str, batch: pb.Batch) -> tuple[int, bool]:
        return await self.write(lambda _db: self.ingest_sync(node, stream_id, cluster, batch))

    # -- queries ---------------------------------------------------------
    async def list_jobs(
        self, user: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        def query(db: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = "SELECT * FROM jobs"
            params: list[Any] = []
            if user is not None:
                sql += " WHERE user_name = ?"
                params.append(user)
            sql += " ORDER BY start_time DESC, run_id DESC LIMIT ? OFFSET ?"
            params += [limit, offset]
            return [dict(r) for r in db.execute(sql, params)]

        return await self.read(query)

    async def get_job(self, job_id: int) -> dict[str, Any] | None:
        """The latest run of ``job_id`` (a requeued job has several)."""

        def query(db: sqlite3.Connection) -> dict[str, Any] | None:
            row = db.execute(
                "SELECT * FROM jobs WHERE job_id = ? ORDER BY start_time DESC, run_id DESC LIMIT 1", (job_id,)
            ).fetchone()
            return dict(row) if row else None

        return await self.read(query)

    async def job_samples(
        self, job_id: int, start_ms: int | None = None, end_ms: int | None = None, step: str = ""
    ) -> list[dict[str, Any]]:
        def query(db: sqlite3.Connection) -> list[dict[str, Any]]:
            sql = "SELECT * FROM job_samples WHERE job_id = ? AND step = ?"
            params: list[Any] = [job_id, step]
            if start_ms is not None:
                sql += " AND ts >= ?"
                params.append(start_ms)
            if end_ms is not None:
                sql += " AND ts <= ?"
                params.append(end_ms)
            sql += " ORDER BY node, ts"
            rows = []
            for r in db.execute(sql, params):
                row = dict(r)
                for key, value in row.items():
                    if isinstance(value, float) and math.isinf(value):
                        row[key] = None
                rows.append(row)
            return rows

        return await self.read(query)
