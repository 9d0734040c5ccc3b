"""Incremental rollups: raw samples -> 1-minute rows -> 1-hour rows.

The work of a pass grows with the data that arrived since the last pass, not with the size of the
tables: the ``job_series`` ledger (kept current by the ingest path) says, per (job, node, step), the
earliest minute that received data since it was last rolled up (``dirty_1m_ms``); a pass re-aggregates
only from there, seeking by primary key. Late data (an agent replaying its spool after an outage) moves
that watermark back, so its minutes are recomputed too; rows are written with INSERT OR REPLACE.

Only complete periods are rolled up: minutes that ended at least ``lag_ms`` ago, hours whose minutes
are all rolled up. Counters (cumulative CPU seconds, I/O bytes, OOM kills) keep their last value, which
for a monotonic counter is its maximum; all other columns keep min, mean and max, and ``n`` (samples)
weights the mean when minutes are combined into hours.

Minutes are first written as wide rows (``job_samples_1m``); when their hour is complete the 1-hour
pass packs them into per-column hour rows (``store/packed.py``) and computes the hour's row from those,
so a late minute of an old hour is merged into that hour and the hour recomputed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from jobpulse.collector.store.migrations import (
    COUNTER_COLUMNS,
    JOB_SAMPLE_COLUMNS,
    rollup_value_columns,
)
from jobpulse.collector.store.packed import COLUMNS, HOUR_MS, MINUTE_MS
from jobpulse.collector.store.packing import hour_row, pack_series
from jobpulse.collector.store.state import set_state

__all__ = ["HOUR_MS", "MINUTE_MS", "RollupResult", "rollup"]
_CHUNK = 500  # series per transaction: ingest waits at most one chunk for the writer


def _raw_aggregates() -> str:
    parts = ["count(*)"]
    for c in JOB_SAMPLE_COLUMNS:
        parts += [f"max({c})"] if c in COUNTER_COLUMNS else [f"min({c})", f"avg({c})", f"max({c})"]
    return ", ".join(parts)


_COLS = ", ".join(rollup_value_columns())
_INSERT_1M = (
    f"INSERT OR REPLACE INTO job_samples_1m (job_id, node, step, ts, {_COLS}) "
    f"SELECT job_id, node, step, (ts / {MINUTE_MS}) * {MINUTE_MS} AS m, {_raw_aggregates()} FROM job_samples "
    "WHERE job_id = ? AND node = ? AND step = ? AND ts >= ? AND ts < ? GROUP BY m"
)
_INSERT_1H = (
    f"INSERT OR REPLACE INTO job_samples_1h (job_id, node, step, ts, {', '.join(COLUMNS)})"
    f" VALUES (?, ?, ?, ?, {', '.join('?' for _ in COLUMNS)})"
)


@dataclass(frozen=True)
class RollupResult:
    """What one pass did, for logs and the benchmark."""

    series_1m: int
    rows_1m: int
    series_1h: int
    rows_1h: int
    upto_1m_ms: int
    upto_1h_ms: int


def _floor(ms: int, step: int) -> int:
    return ms - ms % step


def _hours(db: sqlite3.Connection, job_id: int, node: str, step: str, lo: int, hi: int) -> int:
    """Pack the complete hours [lo, hi) of one series and write their 1-hour rows; returns rows."""
    hours = pack_series(db, job_id, node, step, lo, hi)
    db.executemany(
        _INSERT_1H, [(job_id, node, step, hour, *hour_row(h)) for hour, h in sorted(hours.items())]
    )
    return len(hours)


def _minutes(db: sqlite3.Connection, job_id: int, node: str, step: str, lo: int, hi: int) -> int:
    return int(db.execute(_INSERT_1M, (job_id, node, step, lo, hi)).rowcount)


def _pass(
    db: sqlite3.Connection,
    dirty_col: str,
    upto: int,
    period: int,
    work: Callable[[sqlite3.Connection, int, str, str, int, int], int],
    after: str,
) -> tuple[int, int]:
    """Roll up every series whose ``dirty_col`` is before ``upto``; returns (series, rows written)."""
    pending = db.execute(
        f"SELECT job_id, node, step, {dirty_col}, last_ms FROM job_series WHERE {dirty_col} < ?", (upto,)
    ).fetchall()
    rows = 0
    for i in range(0, len(pending), _CHUNK):
        db.execute("BEGIN IMMEDIATE")
        try:
            for job_id, node, step, dirty, last_ms in pending[i : i + _CHUNK]:
                lo = _floor(dirty, period)
                rows += work(db, job_id, node, step, lo, upto)
                params = {"dirty": upto if last_ms >= upto else None, "lo": lo}
                db.execute(after, {**params, "job": job_id, "node": node, "step": step})
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return len(pending), rows


def rollup(db: sqlite3.Connection, now_ms: int, lag_ms: int = 60_000) -> RollupResult:
    """One pass: minutes that ended ``lag_ms`` before ``now_ms``, then the hours they complete."""
    upto_1m = _floor(now_ms - lag_ms, MINUTE_MS)
    upto_1h = _floor(upto_1m, HOUR_MS)
    s1, r1 = _pass(
        db,
        "dirty_1m_ms",
        upto_1m,
        MINUTE_MS,
        _minutes,
        "UPDATE job_series SET dirty_1m_ms = :dirty,"
        f" dirty_1h_ms = min(coalesce(dirty_1h_ms, :lo / {HOUR_MS} * {HOUR_MS}), :lo / {HOUR_MS} * {HOUR_MS}),"
        " m1_first_ms = min(coalesce(m1_first_ms, :lo), :lo)"
        " WHERE job_id = :job AND node = :node AND step = :step",
    )
    s2, r2 = _pass(
        db,
        "dirty_1h_ms",
        upto_1h,
        HOUR_MS,
        _hours,
        "UPDATE job_series SET dirty_1h_ms = :dirty WHERE job_id = :job AND node = :node AND step = :step",
    )
    db.execute("BEGIN IMMEDIATE")
    set_state(db, "rollup_1m_upto_ms", upto_1m)
    set_state(db, "rollup_1h_upto_ms", upto_1h)
    db.execute("COMMIT")
    return RollupResult(s1, r1, s2, r2, upto_1m, upto_1h)
