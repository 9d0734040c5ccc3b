"""The ingest hot path: one batch, one transaction, plain executemany; dedup by (node, stream, seq)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jobpulse.collector.store.errors import BatchError
from jobpulse.collector.store.jobs import apply_event, parse_job_id
from jobpulse.collector.store.migrations import (
    GPU_SAMPLE_COLUMNS,
    JOB_SAMPLE_COLUMNS,
    NODE_SAMPLE_COLUMNS,
)
from jobpulse.proto.v1 import ingest_pb2 as pb

_JOB_INSERT = (
    f"INSERT OR IGNORE INTO job_samples (job_id, node, step, ts, {', '.join(JOB_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in JOB_SAMPLE_COLUMNS)})"
)
# The job_series ledger (see migrations._v3_storage): first/last sample and the earliest minute a rollup must redo.
_SERIES_UPSERT = (
    "INSERT INTO job_series (job_id, node, step, raw_first_ms, last_ms, dirty_1m_ms) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(job_id, node, step) DO UPDATE SET"
    " raw_first_ms = min(coalesce(raw_first_ms, excluded.raw_first_ms), excluded.raw_first_ms),"
    " last_ms = max(last_ms, excluded.last_ms),"
    " dirty_1m_ms = min(coalesce(dirty_1m_ms, excluded.dirty_1m_ms), excluded.dirty_1m_ms)"
)
_NODE_INSERT = (
    f"INSERT OR IGNORE INTO node_samples (node, ts, {', '.join(NODE_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, {', '.join('?' for _ in NODE_SAMPLE_COLUMNS)})"
)
_GPU_INSERT = (
    f"INSERT OR IGNORE INTO gpu_samples (node, uuid, ts, job_id, {', '.join(GPU_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in GPU_SAMPLE_COLUMNS)})"
)


def _check_lengths(label: str, names: Iterable[str], columns: list[Any]) -> int:
    """The common length of parallel columns; BatchError naming them all when they differ."""
    first = len(columns[0])
    if any(len(c) != first for c in columns):
        lengths = dict(zip(names, (len(c) for c in columns), strict=True))
        raise BatchError(f"{label}: columns have different lengths {lengths}")
    return first


def _series_ranges(
    node: str, job_ids: list[int], steps: Iterable[str], times: Iterable[int]
) -> list[tuple[int, str, str, int, int, int]]:
    """(job, node, step, first, last, first) per series in the batch: usually one or two rows."""
    ranges: dict[tuple[int, str], list[int]] = {}
    for key in zip(job_ids, steps, times, strict=True):
        span = ranges.get(key[:2])
        if span is None:
            ranges[key[:2]] = [key[2], key[2]]
        elif key[2] < span[0]:
            span[0] = key[2]
        elif key[2] > span[1]:
            span[1] = key[2]
    return [(job, node, step, lo, hi, lo) for (job, step), (lo, hi) in ranges.items()]


def record_hello(db: sqlite3.Connection, hello: pb.Hello) -> int:
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


@dataclass
class Pending:
    """One validated batch waiting for the writer (validation happens outside the transaction)."""

    node: str
    stream_id: str
    cluster: str
    batch: pb.Batch
    job_rows: list[tuple[Any, ...]]
    gpu_rows: list[tuple[Any, ...]]
    series_rows: list[tuple[int, str, str, int, int, int]]


def prepare(node: str, stream_id: str, cluster: str, batch: pb.Batch) -> Pending:
    """Check a batch before it goes near the database.

    Raises:
        BatchError: malformed batch; nothing of it is stored.
    """
    jobs = batch.jobs
    job_rows: list[tuple[Any, ...]] = []
    series_rows: list[tuple[int, str, str, int, int, int]] = []
    if jobs.ByteSize():
        values = [getattr(jobs, c) for c in JOB_SAMPLE_COLUMNS]
        n = _check_lengths(
            "jobs",
            ("job_id", "step", "time_ms", *JOB_SAMPLE_COLUMNS),
            [jobs.job_id, jobs.step, jobs.time_ms, *values],
        )
        try:
            ids = list(map(int, jobs.job_id))
        except ValueError:
            ids = [parse_job_id(j) for j in jobs.job_id]  # raises BatchError naming the bad one
        job_rows = list(zip(ids, [node] * n, jobs.step, jobs.time_ms, *values, strict=True))
        series_rows = _series_ranges(node, ids, jobs.step, jobs.time_ms)
    gpus = batch.gpus
    gpu_rows: list[tuple[Any, ...]] = []
    if gpus.ByteSize():
        values = [getattr(gpus, c) for c in GPU_SAMPLE_COLUMNS]
        n = _check_lengths(
            "gpus",
            ("uuid", "time_ms", "job_id", *GPU_SAMPLE_COLUMNS),
            [gpus.uuid, gpus.time_ms, gpus.job_id, *values],
        )
        gpu_jobs = [parse_job_id(j) if j else None for j in gpus.job_id]
        gpu_rows = list(zip([node] * n, gpus.uuid, gpus.time_ms, gpu_jobs, *values, strict=True))
    return Pending(node, stream_id, cluster, batch, job_rows, gpu_rows, series_rows)


def ingest_batch(
    db: sqlite3.Connection, node: str, stream_id: str, cluster: str, batch: pb.Batch
) -> tuple[int, bool]:
    """Store one batch in one transaction. Returns (acked seq, stored?); a replay is acked, not stored.

    Raises:
        BatchError: malformed batch; nothing of it is stored.
    """
    return ingest_many(db, [prepare(node, stream_id, cluster, batch)])[0]


def ingest_many(
    db: sqlite3.Connection, items: list[Pending], known: dict[tuple[str, str], int] | None = None
) -> list[tuple[int, bool]]:
    """Store several validated batches in ONE transaction (group commit); one result per batch.

    Batches of one stream must be in sequence order; a replayed one is acknowledged, not stored.
    Rows of all batches go into one ``executemany`` per table: per-statement and per-commit costs
    are paid once per group instead of once per batch, which is what lets hundreds of agents
    stream small batches at once. ``known``, when given, caches each stream's last stored seq
    across calls (valid because this connection is the only writer); it is updated after COMMIT.
    """
    now = time.time()
    results: list[tuple[int, bool]] = []
    last: dict[tuple[str, str], int] = {}
    job_rows: list[tuple[Any, ...]] = []
    node_rows: list[tuple[Any, ...]] = []
    gpu_rows: list[tuple[Any, ...]] = []
    fs_rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    gap_rows: list[tuple[Any, ...]] = []
    series_rows: list[tuple[int, str, str, int, int, int]] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for item in items:
            key = (item.node, item.stream_id)
            if key not in last and known is not None and key in known:
                last[key] = known[key]
            if key not in last:
                row = db.execute(
                    "SELECT last_seq FROM agent_streams WHERE node = ? AND stream_id = ?", key
                ).fetchone()
                last[key] = int(row[0]) if row else 0
            if item.batch.seq <= last[key]:
                results.append((last[key], False))
                continue
            _collect(db, item, job_rows, node_rows, gpu_rows, fs_rows)
            series_rows.extend(item.series_rows)
            gap_rows.extend(
                (item.node, item.stream_id, g.from_ms, g.to_ms, g.batches, g.bytes, now)
                for g in item.batch.gaps
            )
            last[key] = item.batch.seq
            results.append((item.batch.seq, True))
        if job_rows:
            db.executemany(_JOB_INSERT, job_rows)
            db.executemany(_SERIES_UPSERT, series_rows)
        if node_rows:
            db.executemany(_NODE_INSERT, node_rows)
        if gpu_rows:
            db.executemany(_GPU_INSERT, gpu_rows)
        if fs_rows:
            db.executemany(
                """INSERT INTO filesystems (node, mountpoint, device, fstype, total_bytes, used_bytes, ts)
                   VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(node, mountpoint) DO UPDATE SET
                   device=excluded.device, fstype=excluded.fstype, total_bytes=excluded.total_bytes,
                   used_bytes=excluded.used_bytes, ts=excluded.ts""",
                fs_rows.values(),
            )
        if gap_rows:
            db.executemany(
                "INSERT INTO gaps (node, stream_id, from_ms, to_ms, batches, bytes, received)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                gap_rows,
            )
        db.executemany(
            "INSERT INTO agent_streams (node, stream_id, last_seq, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(node, stream_id) DO UPDATE SET last_seq=excluded.last_seq, updated=excluded.updated",
            [(node, stream, seq, now) for (node, stream), seq in last.items()],
        )
        db.executemany(
            "UPDATE nodes SET last_seen = ? WHERE name = ?", [(now, node) for node in {n for n, _ in last}]
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    if known is not None:
        known.update(last)
    return results


def _collect(
    db: sqlite3.Connection,
    item: Pending,
    job_rows: list[tuple[Any, ...]],
    node_rows: list[tuple[Any, ...]],
    gpu_rows: list[tuple[Any, ...]],
    fs_rows: dict[tuple[str, str], tuple[Any, ...]],
) -> None:
    """Add one batch's rows to the group's; apply its job events now (they are few)."""
    node, batch = item.node, item.batch
    job_rows.extend(item.job_rows)
    gpu_rows.extend(item.gpu_rows)
    if batch.node:
        node_rows.extend((node, s.time_ms, *(getattr(s, c) for c in NODE_SAMPLE_COLUMNS)) for s in batch.node)
        latest = batch.node[-1]
        for f in latest.filesystems:
            fs_rows[(node, f.mountpoint)] = (
                node, f.mountpoint, f.device, f.fstype, f.total_bytes, f.used_bytes, latest.time_ms,
            )  # fmt: skip
    for event in batch.events:
        apply_event(db, node, item.cluster, event)
