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
_NODE_INSERT = (
    f"INSERT OR IGNORE INTO node_samples (node, ts, {', '.join(NODE_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, {', '.join('?' for _ in NODE_SAMPLE_COLUMNS)})"
)
_GPU_INSERT = (
    f"INSERT OR IGNORE INTO gpu_samples (node, uuid, ts, job_id, {', '.join(GPU_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in GPU_SAMPLE_COLUMNS)})"
)


def _check_columns(message: Any, names: Iterable[str], label: str) -> int:
    lengths = {name: len(getattr(message, name)) for name in names}
    distinct = set(lengths.values())
    if len(distinct) > 1:
        raise BatchError(f"{label}: columns have different lengths {lengths}")
    return distinct.pop() if distinct else 0


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
    job_ids: list[int]
    gpu_jobs: list[int | None]


def prepare(node: str, stream_id: str, cluster: str, batch: pb.Batch) -> Pending:
    """Check a batch before it goes near the database.

    Raises:
        BatchError: malformed batch; nothing of it is stored.
    """
    jobs = batch.jobs
    n_jobs = _check_columns(jobs, ("job_id", "step", "time_ms", *JOB_SAMPLE_COLUMNS), "jobs")
    gpus = batch.gpus
    _check_columns(gpus, ("uuid", "time_ms", "job_id", *GPU_SAMPLE_COLUMNS), "gpus")
    job_ids = [parse_job_id(j) for j in jobs.job_id] if n_jobs else []
    gpu_jobs = [parse_job_id(j) if j else None for j in gpus.job_id]
    return Pending(node, stream_id, cluster, batch, job_ids, gpu_jobs)


def ingest_batch(
    db: sqlite3.Connection, node: str, stream_id: str, cluster: str, batch: pb.Batch
) -> tuple[int, bool]:
    """Store one batch in one transaction. Returns (acked seq, stored?); a replay is acked, not stored.

    Raises:
        BatchError: malformed batch; nothing of it is stored.
    """
    return ingest_many(db, [prepare(node, stream_id, cluster, batch)])[0]


def ingest_many(db: sqlite3.Connection, items: list[Pending]) -> list[tuple[int, bool]]:
    """Store several validated batches in ONE transaction (group commit); one result per batch.

    Batches of one stream must be in sequence order; a replayed one is acknowledged, not stored.
    The commit, not the statements, dominates the cost of a small batch, so sharing it between the
    batches that arrived while the previous commit ran is what lets many agents stream at once.
    """
    results = []
    now = time.time()
    db.execute("BEGIN IMMEDIATE")
    try:
        for item in items:
            results.append(_apply(db, item, now))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return results


def _apply(db: sqlite3.Connection, item: Pending, now: float) -> tuple[int, bool]:
    node, stream_id, cluster, batch = item.node, item.stream_id, item.cluster, item.batch
    jobs, gpus = batch.jobs, batch.gpus
    n_jobs = len(item.job_ids)
    row = db.execute(
        "SELECT last_seq FROM agent_streams WHERE node = ? AND stream_id = ?", (node, stream_id)
    ).fetchone()
    last = int(row[0]) if row else 0
    if batch.seq <= last:
        return last, False
    if n_jobs:
        db.executemany(
            _JOB_INSERT,
            zip(
                item.job_ids,
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
                item.gpu_jobs,
                *(getattr(gpus, c) for c in GPU_SAMPLE_COLUMNS),
                strict=True,
            ),
        )
    for event in batch.events:
        apply_event(db, node, cluster, event)
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
    return batch.seq, True
