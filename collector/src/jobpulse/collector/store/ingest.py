"""The ingest hot path: a group of batches, one transaction, a few INSERT ... SELECT from their stage;
dedup by (node, stream, seq)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any

from jobpulse.collector.store import stage
from jobpulse.collector.store.errors import BatchError
from jobpulse.collector.store.jobs import MAX_JOB_ID, apply_event, parse_job_id
from jobpulse.collector.store.migrations import (
    GPU_SAMPLE_COLUMNS,
    JOB_SAMPLE_COLUMNS,
    NODE_SAMPLE_COLUMNS,
)
from jobpulse.collector.store.stage import Stage
from jobpulse.common import validate
from jobpulse.common.validate import INT64_MAX, InvalidField
from jobpulse.proto.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)


def _move(table: str, kind: str, key: str) -> str:
    """The statement that moves a group's staged rows of one kind into their table.

    In key order, consecutive inserts land in the same B-tree leaf (one descent and one page write per
    series) instead of hopping between 1,600 series per tick; rowid breaks ties in arrival order, so
    of two rows with one key the first sent still wins (OR IGNORE).
    """
    columns = ", ".join(stage.COLUMNS[kind])
    return (
        f"INSERT OR IGNORE INTO main.{table} ({columns}) SELECT {columns} FROM {stage.SCHEMA}.{kind}"
        f" ORDER BY {key}, rowid"
    )


_MOVE_JOBS = _move("job_samples", "job", "job_id, node, step, ts")
_MOVE_NODES = _move("node_samples", "node", "node, ts")
_MOVE_GPUS = _move("gpu_samples", "gpu", "uuid, ts")
# The job_series ledger (see migrations._v3_storage): first/last sample and the earliest minute a rollup
# must redo. SERIES_MERGE folds a new range into a series' row (tests/unit/collector/seed.py uses it too).
SERIES_MERGE = (
    " ON CONFLICT(job_id, node, step) DO UPDATE SET"
    " raw_first_ms = min(coalesce(raw_first_ms, excluded.raw_first_ms), excluded.raw_first_ms),"
    " last_ms = max(last_ms, excluded.last_ms),"
    " dirty_1m_ms = min(coalesce(dirty_1m_ms, excluded.dirty_1m_ms), excluded.dirty_1m_ms)"
)
_SERIES_UPSERT = (
    "INSERT INTO main.job_series (job_id, node, step, raw_first_ms, last_ms, dirty_1m_ms)"
    f" SELECT job_id, node, step, min(ts), max(ts), min(ts) FROM {stage.SCHEMA}.job"
    " WHERE true GROUP BY job_id, node, step"  # WHERE: SQLite's rule for an upsert fed by a SELECT
    + SERIES_MERGE
)


# One C call fetches all parallel columns of a message (per-field getattr in Python costs more).
_JOB_NAMES = ("job_id", "step", "time_ms", *JOB_SAMPLE_COLUMNS)
_GPU_NAMES = ("uuid", "time_ms", "job_id", *GPU_SAMPLE_COLUMNS)
_job_columns = attrgetter(*_JOB_NAMES)
_gpu_columns = attrgetter(*_GPU_NAMES)
_node_values = attrgetter("time_ms", *NODE_SAMPLE_COLUMNS)


def _check_lengths(label: str, names: Iterable[str], columns: Sequence[Any]) -> int:
    """The common length of parallel columns; BatchError naming them all when they differ."""
    first = len(columns[0])
    if len(set(map(len, columns))) > 1:
        lengths = dict(zip(names, (len(c) for c in columns), strict=True))
        raise BatchError(f"{label}: columns have different lengths {lengths}")
    return first


MAX_HELLO_GPUS = 1024


def check_hello(hello: pb.Hello) -> None:
    """A hello fit to be stored: the node is a host name, texts carry no controls, integers fit SQLite.

    Raises:
        InvalidField: naming the field (``node``, ``memory_bytes``, ...).
    """
    validate.node_name(hello.node, "node")
    validate.text(hello.cluster, "cluster", 255)
    validate.text(hello.stream_id, "stream_id", 128)
    validate.text(hello.agent_version, "agent_version", 64)
    validate.integer(hello.memory_bytes, "memory_bytes", 0, INT64_MAX)
    validate.integer(hello.boot_time, "boot_time", 0, INT64_MAX)
    if len(hello.gpus) > MAX_HELLO_GPUS:
        raise InvalidField("gpus", f"more than {MAX_HELLO_GPUS}")
    for gpu in hello.gpus:
        for name in ("uuid", "name", "pci_bus_id", "parent_uuid"):
            validate.text(getattr(gpu, name), f"gpus.{name}", 255)


_META_TEXT = ("cluster", "account", "partition", "qos", "job_name", "nodelist", "sluid", "state", "source")


def _check_meta_text(meta: pb.JobMeta) -> None:
    """An event's names as the agent checks them (common.validate): an older or foreign agent's control
    characters, bidi tricks or over-long names are refused (a Reject naming the field), never stored."""
    try:
        if meta.user:
            validate.unix_name(meta.user, "events: user")
        if meta.group:
            validate.unix_name(meta.group, "events: group")
        for name in _META_TEXT:
            validate.text(getattr(meta, name), f"events: {name}", max_length=4096)
    except validate.InvalidField as exc:
        raise BatchError(str(exc)) from None


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
    node_rows: list[tuple[Any, ...]]
    gpu_rows: list[tuple[Any, ...]]
    rows_dropped: bool = False

    def drop_rows(self) -> None:
        """Free the row tuples once they are staged (see GroupCommitter.submit); ``prepare`` of
        ``batch`` makes them again where they are needed (the one-by-one fallback)."""
        self.job_rows, self.node_rows, self.gpu_rows = [], [], []
        self.rows_dropped = True


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
            # ASCII digits only (int() also takes ' 7', '1_2' and '٣'): one join and two C scans.
            joined = "".join(columns[0])
            try:
                if not (joined.isascii() and joined.isdigit()):
                    raise ValueError
                ids = list(map(int, columns[0]))  # '' among them raises
                if max(ids) > MAX_JOB_ID:
                    raise ValueError
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
    node_rows = [(node, *_node_values(s)) for s in batch.node]
    for event in batch.events:  # few; checked here so that a bad one never rolls back a whole group
        parse_job_id(event.meta.job_id)
        if event.meta.mem_requested_bytes > INT64_MAX:
            raise BatchError(f"events: mem_requested_bytes {event.meta.mem_requested_bytes} is out of range")
        _check_meta_text(event.meta)
    for gap in batch.gaps:  # uint64 on the wire, 64-bit signed in SQLite
        if gap.batches > INT64_MAX or gap.bytes > INT64_MAX:
            raise BatchError(f"gaps: batches {gap.batches} / bytes {gap.bytes} out of range")
    return Pending(node, stream_id, cluster, batch, job_rows, node_rows, gpu_rows)


def ingest_batch(
    db: sqlite3.Connection, node: str, stream_id: str, cluster: str, batch: pb.Batch
) -> tuple[int, bool]:
    """Store one batch in one transaction. Returns (acked seq, stored?); a replay is acked, not stored.

    Raises:
        BatchError: malformed batch; nothing of it is stored.
    """
    return ingest_many(db, [prepare(node, stream_id, cluster, batch)])[0]


def ingest_many(
    db: sqlite3.Connection,
    items: list[Pending],
    known: dict[tuple[str, str], int] | None = None,
    staged: Stage | None = None,
) -> list[tuple[int, bool]]:
    """Store several validated batches in ONE transaction (group commit); one result per batch.

    Batches of one stream must be in sequence order; a replayed one is acknowledged, not stored.
    The rows of all batches move into each table with one statement: per-statement and per-commit
    costs are paid once per group instead of once per batch, which is what lets hundreds of agents
    stream small batches at once. ``staged`` holds ``items``' rows when the caller staged them
    already (the group committer does, on the event loop; see store/stage.py); without it they are
    staged here. ``known``, when given, caches each stream's last stored seq across calls (valid
    because this connection is the only writer); it is updated after COMMIT.
    """
    if staged is None:
        staged = Stage()
        staged.add(items)
    elif len(staged.ends) != len(items):
        raise ValueError(f"the stage holds {len(staged.ends)} batches, not the {len(items)} given")
    stage.load(db, staged)  # closes ``staged``: from here on its rows live in ``db``'s stage schema
    try:
        return _store(db, items, known, staged)
    finally:
        try:
            if db.in_transaction:  # _store's ROLLBACK failed: later groups could not BEGIN
                db.execute("ROLLBACK")
            db.execute(f"DETACH DATABASE {stage.SCHEMA}")  # frees the group's rows now
        except sqlite3.Error as exc:  # logged, so that it does not hide the error being raised
            log.warning("could not roll back or detach the ingest stage: %s", exc)


def _store(
    db: sqlite3.Connection, items: list[Pending], known: dict[tuple[str, str], int] | None, staged: Stage
) -> list[tuple[int, bool]]:
    now = time.time()
    results: list[tuple[int, bool]] = []
    last: dict[tuple[str, str], int] = {}
    skipped: list[int] = []
    fs_rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    gap_rows: list[tuple[Any, ...]] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for i, item in enumerate(items):
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
                skipped.append(i)
                continue
            _collect(db, item, fs_rows)
            if item.batch.gaps:
                gap_rows.extend(
                    (item.node, item.stream_id, g.from_ms, g.to_ms, g.batches, g.bytes, now)
                    for g in item.batch.gaps
                )
            last[key] = item.batch.seq
            results.append((item.batch.seq, True))
        if skipped:
            stage.drop_batches(db, staged, skipped)
        if len(skipped) < len(items):
            db.execute(_MOVE_JOBS)
            db.execute(_SERIES_UPSERT)
            db.execute(_MOVE_NODES)
            db.execute(_MOVE_GPUS)
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
        if db.in_transaction:  # SQLite may have rolled back already (e.g. a full disk)
            db.execute("ROLLBACK")
        raise
    if known is not None:
        known.update(last)
    return results


def _collect(db: sqlite3.Connection, item: Pending, fs_rows: dict[tuple[str, str], tuple[Any, ...]]) -> None:
    """Keep the batch's latest filesystem figures; apply its job events now (they are few)."""
    node, batch = item.node, item.batch
    samples = batch.node
    if samples:
        latest = samples[-1]
        for f in latest.filesystems:
            fs_rows[(node, f.mountpoint)] = (
                node, f.mountpoint, f.device, f.fstype, f.total_bytes, f.used_bytes, latest.time_ms,
            )  # fmt: skip
    if batch.events:
        for event in batch.events:
            apply_event(db, node, item.cluster, event)
