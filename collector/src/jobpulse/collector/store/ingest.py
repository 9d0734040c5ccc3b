"""The ingest hot path: one batch, one transaction, plain executemany; dedup by (node, stream, seq)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, itemgetter
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


# One C call fetches all parallel columns of a message (per-field getattr in Python costs more).
_JOB_NAMES = ("job_id", "step", "time_ms", *JOB_SAMPLE_COLUMNS)
_GPU_NAMES = ("uuid", "time_ms", "job_id", *GPU_SAMPLE_COLUMNS)
_job_columns = attrgetter(*_JOB_NAMES)
_gpu_columns = attrgetter(*_GPU_NAMES)
_node_values = attrgetter("time_ms", *NODE_SAMPLE_COLUMNS)
_job_key = itemgetter(0, 1, 2, 3)  # job_samples' primary key (job_id, node, step, ts)
_node_key = itemgetter(0, 1)  # node_samples' (node, ts)


def _check_lengths(label: str, names: Iterable[str], columns: Sequence[Any]) -> int:
    """The common length of parallel columns; BatchError naming them all when they differ."""
    first = len(columns[0])
    if len(set(map(len, columns))) > 1:
        lengths = dict(zip(names, (len(c) for c in columns), strict=True))
        raise BatchError(f"{label}: columns have different lengths {lengths}")
    return first


def _group_series(job_rows: list[tuple[Any, ...]]) -> list[tuple[int, str, str, int, int, int]]:
    """Ledger rows for a whole group: one per (job, node, step) however many batches and ticks carry it.

    Job rows start with (job, node, step, ts); the upsert keeps min/max, so merging here first only
    saves statements (one per series and transaction instead of one per series and batch).
    """
    ranges: dict[tuple[int, str, str], list[int]] = {}
    get = ranges.get
    for row in job_rows:
        key = row[:3]
        ts = row[3]
        span = get(key)
        if span is None:
            ranges[key] = [ts, ts]
        elif ts < span[0]:
            span[0] = ts
        elif ts > span[1]:
            span[1] = ts
    return [(job, node, step, lo, hi, lo) for (job, node, step), (lo, hi) in ranges.items()]


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


@dataclass(slots=True)
class Pending:
    """One validated batch waiting for the writer (validation happens outside the transaction)."""

    node: str
    stream_id: str
    cluster: str
    batch: pb.Batch
    job_rows: list[tuple[Any, ...]]
    gpu_rows: list[tuple[Any, ...]]


def prepare(node: str, stream_id: str, cluster: str, batch: pb.Batch) -> Pending:
    """Check a batch before it goes near the database, and turn its columns into rows.

    Rows are built by ``zip`` over the repeated fields, in C: no per-value Python code runs here
    (this runs for every batch of every agent on the collector's event loop).

    Raises:
        BatchError: malformed batch; nothing of it is stored.
    """
    job_rows: list[tuple[Any, ...]] = []
    if batch.HasField("jobs"):
        # x[:] copies a repeated field into a list in one C call; zip over the lists is then cheaper
        # than iterating the protobuf containers value by value.
        columns = [c[:] for c in _job_columns(batch.jobs)]
        n = _check_lengths("jobs", _JOB_NAMES, columns)
        if n:
            try:
                ids = list(map(int, columns[0]))
            except ValueError:
                ids = [parse_job_id(j) for j in columns[0]]  # raises BatchError naming the bad one
            job_rows = list(zip(ids, repeat(node, n), *columns[1:], strict=True))
    gpu_rows: list[tuple[Any, ...]] = []
    if batch.HasField("gpus"):
        columns = [c[:] for c in _gpu_columns(batch.gpus)]
        n = _check_lengths("gpus", _GPU_NAMES, columns)
        if n:
            gpu_jobs = [parse_job_id(j) if j else None for j in columns[2]]
            gpu_rows = list(zip(repeat(node, n), columns[0], columns[1], gpu_jobs, *columns[3:], strict=True))
    for event in batch.events:  # few; checked here so that a bad one never rolls back a whole group
        parse_job_id(event.meta.job_id)
    return Pending(node, stream_id, cluster, batch, job_rows, gpu_rows)


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
            if item.batch.gaps:
                gap_rows.extend(
                    (item.node, item.stream_id, g.from_ms, g.to_ms, g.batches, g.bytes, now)
                    for g in item.batch.gaps
                )
            last[key] = item.batch.seq
            results.append((item.batch.seq, True))
        if job_rows:
            # In primary-key order, consecutive inserts land in the same B-tree leaf (one descent,
            # one page write per series) instead of hopping between 1,600 series per tick: measured
            # 1.3-2x less CPU per row for groups of 4-16 ticks per series, sort included.
            job_rows.sort(key=_job_key)  # stable: of two rows with one key, the first sent still wins
            db.executemany(_JOB_INSERT, job_rows)
            db.executemany(_SERIES_UPSERT, _group_series(job_rows))
        if node_rows:
            node_rows.sort(key=_node_key)
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
    samples = batch.node
    if samples:
        node_rows.extend((node, *_node_values(s)) for s in samples)
        latest = samples[-1]
        for f in latest.filesystems:
            fs_rows[(node, f.mountpoint)] = (
                node, f.mountpoint, f.device, f.fstype, f.total_bytes, f.used_bytes, latest.time_ms,
            )  # fmt: skip
    if batch.events:
        for event in batch.events:
            apply_event(db, node, item.cluster, event)
