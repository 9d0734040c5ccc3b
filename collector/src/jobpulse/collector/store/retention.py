"""Retention: delete samples older than each resolution keeps; jobs, summaries and tags stay forever.

The sample tables are keyed (job_id, node, step, ts) for the job-series query, so "everything before
T" is not one key range. Instead of scanning, retention asks the ``job_series`` ledger which series
still hold data older than the cutoff (an index on the first stored timestamp) and deletes one key
range per such series: the cost is the data deleted plus one seek per affected series.

Data that has not been rolled up yet is never deleted (the cutoff stops at the series' rollup
watermark), so a rollup that fell behind loses no information.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from jobpulse.collector.store.packed import HOUR_MS, MINUTE_MS, delete_before, first_minute
from jobpulse.collector.store.state import set_state

DAY_MS = 86_400_000
_CHUNK = 500


@dataclass(frozen=True)
class RetentionResult:
    """Rows deleted; ``rows_1m`` counts minutes (packed hours hold up to 60)."""

    raw_rows: int
    rows_1m: int
    rows_1h: int
    node_rows: int
    gpu_rows: int


Delete = Callable[[sqlite3.Connection, int, str, str, int], int]
First = Callable[[sqlite3.Connection, int, str, str], "int | None"]


def _raw_delete(db: sqlite3.Connection, job_id: int, node: str, step: str, limit: int) -> int:
    return int(
        db.execute(
            "DELETE FROM job_samples WHERE job_id = ? AND node = ? AND step = ? AND ts < ?",
            (job_id, node, step, limit),
        ).rowcount
    )


def _raw_first(db: sqlite3.Connection, job_id: int, node: str, step: str) -> int | None:
    row = db.execute(
        "SELECT min(ts) FROM job_samples WHERE job_id = ? AND node = ? AND step = ?", (job_id, node, step)
    ).fetchone()
    return None if row[0] is None else int(row[0])


def _series_pass(
    db: sqlite3.Connection, first_col: str, guard_col: str, cutoff: int, delete: Delete, first: First
) -> int:
    """Delete each series' data before ``cutoff`` where the ledger's ``first_col`` says it has some."""
    pending = db.execute(
        f"SELECT job_id, node, step, {guard_col} FROM job_series WHERE {first_col} < ?", (cutoff,)
    ).fetchall()
    deleted = 0
    for i in range(0, len(pending), _CHUNK):
        db.execute("BEGIN IMMEDIATE")
        try:
            for job_id, node, step, guard in pending[i : i + _CHUNK]:
                limit = cutoff if guard is None else min(cutoff, guard)
                deleted += delete(db, job_id, node, step, limit)
                db.execute(
                    f"UPDATE job_series SET {first_col} = ? WHERE job_id = ? AND node = ? AND step = ?",
                    (first(db, job_id, node, step), job_id, node, step),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return deleted


def _node_pass(db: sqlite3.Connection, cutoff: int) -> tuple[int, int]:
    """Node and GPU samples are keyed (node, ts) and (uuid, ts): one range delete per node and GPU."""
    node_rows = gpu_rows = 0
    nodes = db.execute("SELECT name, gpus FROM nodes").fetchall()
    db.execute("BEGIN IMMEDIATE")
    try:
        for name, gpus in nodes:
            node_rows += db.execute(
                "DELETE FROM node_samples WHERE node = ? AND ts < ?", (name, cutoff)
            ).rowcount
            for gpu in json.loads(gpus or "[]"):
                gpu_rows += db.execute(
                    "DELETE FROM gpu_samples WHERE uuid = ? AND ts < ?", (gpu.get("uuid", ""), cutoff)
                ).rowcount
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return node_rows, gpu_rows


def apply_retention(
    db: sqlite3.Connection, now_ms: int, raw_days: float, days_1m: float, days_1h: float
) -> RetentionResult:
    """Delete what each resolution no longer keeps; a retention of 0 days keeps that resolution forever.

    Cutoffs are aligned to the period of the next coarser resolution (raw to minutes, 1-minute rows to
    hours) so a query never sees a period half in one table and half in the other.
    """
    raw = rows_1m = rows_1h = node_rows = gpu_rows = 0
    if raw_days > 0:
        cutoff = now_ms - int(raw_days * DAY_MS)
        cutoff -= cutoff % MINUTE_MS
        raw = _series_pass(db, "raw_first_ms", "dirty_1m_ms", cutoff, _raw_delete, _raw_first)
        node_rows, gpu_rows = _node_pass(db, cutoff)
        _record(db, "raw_kept_from_ms", cutoff)
    if days_1m > 0:
        cutoff = now_ms - int(days_1m * DAY_MS)
        cutoff -= cutoff % HOUR_MS
        rows_1m = _series_pass(db, "m1_first_ms", "dirty_1h_ms", cutoff, delete_before, first_minute)
        _record(db, "m1_kept_from_ms", cutoff)
    if days_1h > 0:
        # The hourly table is small (24 rows per series and day) and kept forever by default: a scan is fine.
        cutoff = now_ms - int(days_1h * DAY_MS)
        cutoff -= cutoff % HOUR_MS
        db.execute("BEGIN IMMEDIATE")
        rows_1h = db.execute("DELETE FROM job_samples_1h WHERE ts < ?", (cutoff,)).rowcount
        db.execute("COMMIT")
        _record(db, "h1_kept_from_ms", cutoff)
    return RetentionResult(raw, rows_1m, rows_1h, node_rows, gpu_rows)


def _record(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    set_state(db, key, value)
    db.execute("COMMIT")
