"""1-minute rollups packed by hour: one row per (job, node, step, column, hour) holding 60 values.

This module is the format and the reading side (and retention's deletes); ``packing.py`` writes.

Why (measured in ``bench/query.py``, reasoning in docs/storage.md): a job page reads a few columns of
many minutes. One wide row per minute makes that read every column of every minute (~384 bytes per
minute, 35 MB for a 64-node day); a row per column and hour makes it read only the columns asked for,
60 minutes at a time, in one B-tree seek per node and column (~8 bytes per minute and column).

The hour rows are written once, when the hour is complete (the 1-hour rollup pass packs it). Minutes of
the hour still in progress, and late minutes an agent delivers for an hour already packed, stay in the
wide ``job_samples_1m`` table until that pass merges them into the hour's rows and deletes them. So a
rollup pass never rewrites whole hours every minute, and a reader takes the union of both tables,
a wide row replacing the packed value of its minute (it is the newer one).

Format of ``vals``: 60 little-endian IEEE-754 float64 values, minute 0 to 59 of the hour. NaN means not
measured in that minute or no such minute; column ``n`` (samples in the minute) is 0 for a minute that
has no data at all, which is how readers tell "no minute" from "a minute where this was not measured".
"""

from __future__ import annotations

import math
import sqlite3
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from jobpulse.collector.store.migrations import rollup_value_columns

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
PACKED = "job_samples_1m_packed"
WIDE = "job_samples_1m"
COLUMNS: tuple[str, ...] = tuple(rollup_value_columns())  # "n" first
_NAN = math.nan
_BIG_ENDIAN = sys.byteorder == "big"
POS = 2**62  # beyond any time in ms: an open end of a time range
_ALL_MINUTES = list(range(60))

Hour = dict[str, "array[float]"]  # column -> 60 values (array('d'))


def encode(values: array[float]) -> bytes:
    if _BIG_ENDIAN:
        values = array("d", values)
        values.byteswap()
    return values.tobytes()


def decode(blob: bytes) -> array[float]:
    values = array("d")
    values.frombytes(blob)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def empty_hour(cols: Iterable[str] = COLUMNS) -> Hour:
    return {c: array("d", [0.0 if c == "n" else _NAN] * 60) for c in cols}


def _marks(items: Sequence[object]) -> str:
    return ", ".join("?" for _ in items)


Blobs = dict[str, dict[str, dict[int, bytes]]]  # node -> column -> hour -> packed values
WideRows = dict[str, list[tuple[Any, ...]]]  # node -> [(ts, value per column)]


def fetch(
    db: sqlite3.Connection,
    job_id: int,
    step: str,
    nodes: Sequence[str],
    cols: Sequence[str],
    lo: int,
    hi: int,
    packed_rows: bool = True,
) -> tuple[list[str], Blobs, WideRows]:
    """The stored 1-minute data of ``nodes`` touching [lo, hi), undecoded: (columns read, packed, wide).

    The ``col IN (...)`` and ``node IN (...)`` lists make SQLite seek one key range per node and column,
    so only the columns asked for are read. ``n`` is always among the columns.
    """
    cols = list(dict.fromkeys(["n", *cols]))
    packed: Blobs = {}
    wide: WideRows = {}
    if not nodes:
        return cols, packed, wide
    # Both SELECTs in one read transaction (one WAL snapshot): a 1-hour pass committing between them
    # would otherwise move minutes from the wide table into packed rows the first SELECT did not see.
    own = not db.in_transaction
    if own:
        db.execute("BEGIN")
    try:
        cursor = db.cursor()
        cursor.row_factory = None  # plain tuples: thousands of rows, and sqlite3.Row costs per row
        if packed_rows:
            current_node = current_col = None
            target: dict[int, bytes] = {}
            for node, col, hour, blob in cursor.execute(
                f"SELECT node, col, hour, vals FROM {PACKED} WHERE job_id = ? AND node IN ({_marks(nodes)})"
                f" AND step = ? AND col IN ({_marks(cols)}) AND hour >= ? AND hour < ?",
                (job_id, *nodes, step, *cols, lo - lo % HOUR_MS, hi),
            ):
                if node != current_node or col != current_col:
                    target = packed.setdefault(node, {}).setdefault(col, {})
                    current_node, current_col = node, col
                target[hour] = blob
        for row in cursor.execute(
            f"SELECT node, ts, {', '.join(cols)} FROM {WIDE} WHERE job_id = ? AND node IN ({_marks(nodes)})"
            " AND step = ? AND ts >= ? AND ts < ?",
            (job_id, *nodes, step, lo, hi),
        ):
            wide.setdefault(row[0], []).append(tuple(row[1:]))
    finally:
        if own:
            db.execute("COMMIT")
    return cols, packed, wide


def merge(
    cols: Sequence[str], packed: dict[str, dict[int, bytes]], wide: list[tuple[Any, ...]]
) -> dict[int, Hour]:
    """One node's hours, decoded, with its wide minutes laid over the packed values."""
    hours: dict[int, Hour] = {}
    for col, per_hour in packed.items():
        for hour, blob in per_hour.items():
            hours.setdefault(hour, {})[col] = decode(blob)
    for h in hours.values():
        for c in cols:
            if c not in h:  # nothing stored for that column in that hour: not measured
                h[c] = array("d", [0.0 if c == "n" else _NAN] * 60)
    by_hour: dict[int, list[tuple[Any, ...]]] = {}
    for row in wide:
        by_hour.setdefault(row[0] - row[0] % HOUR_MS, []).append(row)
    for hour, rows in by_hour.items():
        if hour not in hours:
            hours[hour] = empty_hour(cols)
        h = hours[hour]
        slots = [(ts % HOUR_MS) // MINUTE_MS for ts, *_ in rows]
        # column by column: one list comprehension per column instead of a Python step per value
        whole = slots == _ALL_MINUTES  # every minute of the hour, in order: new arrays outright
        for j, c in enumerate(cols, start=1):
            column = [_NAN if r[j] is None else r[j] for r in rows]
            if whole:
                h[c] = array("d", column)
                continue
            arr = h[c]
            for i, v in zip(slots, column, strict=True):
                arr[i] = v
    return hours


def read_hours(
    db: sqlite3.Connection,
    job_id: int,
    step: str,
    nodes: Sequence[str],
    cols: Sequence[str],
    lo: int,
    hi: int,
) -> dict[str, dict[int, Hour]]:
    """The 1-minute data of ``nodes`` touching [lo, hi): {node: {hour start ms: {column: 60 values}}}.

    Packed rows first, then the wide rows of the same minutes laid over them. Minutes outside [lo, hi)
    may be present in the first and last hour: callers filter by time (:func:`minutes`).
    """
    cols, packed, wide = fetch(db, job_id, step, nodes, cols, lo, hi)
    return {node: merge(cols, packed.get(node, {}), wide.get(node, [])) for node in sorted({*packed, *wide})}


def minutes(hour: int, h: Hour, lo: int, hi: int) -> Iterable[tuple[int, int]]:
    """(minute index, minute start ms) of the minutes of ``h`` with data within [lo, hi)."""
    n = h["n"]
    for i in range(60):
        t = hour + i * MINUTE_MS
        if n[i] > 0 and lo <= t < hi:
            yield i, t


def selection(h: Hour, hour: int = 0, lo: int = -POS, hi: int = POS) -> list[int] | None:
    """The minutes of ``h`` (starting at ``hour``) with data within [lo, hi), as readers take them.

    None when that is all 60: the hour lies inside [lo, hi) and every minute has data, the common case,
    which callers take as whole arrays (no per-minute Python work). Otherwise the minutes' indices.
    """
    if lo <= hour and hour + HOUR_MS <= hi:
        n = h["n"]
        return None if min(n) > 0 else [i for i in _ALL_MINUTES if n[i] > 0]
    return [i for i, _ in minutes(hour, h, lo, hi)]


def delete_before(db: sqlite3.Connection, job_id: int, node: str, step: str, limit: int) -> int:
    """Delete a series' 1-minute data before ``limit`` (hour-aligned); returns the minutes deleted."""
    key = (job_id, node, step)
    deleted = 0
    for (blob,) in db.execute(
        f"SELECT vals FROM {PACKED} WHERE job_id = ? AND node = ? AND step = ? AND col = 'n' AND hour < ?",
        (*key, limit),
    ):
        deleted += sum(1 for k in decode(blob) if k > 0)
    db.execute(
        f"DELETE FROM {PACKED} WHERE job_id = ? AND node = ? AND step = ? AND col IN ({_marks(COLUMNS)})"
        " AND hour < ?",
        (*key, *COLUMNS, limit),
    )
    deleted += db.execute(
        f"DELETE FROM {WIDE} WHERE job_id = ? AND node = ? AND step = ? AND ts < ?", (*key, limit)
    ).rowcount
    return deleted


def first_minute(db: sqlite3.Connection, job_id: int, node: str, step: str) -> int | None:
    """The first stored minute of a series (packed or wide), or None."""
    key = (job_id, node, step)
    found = [
        r[0]
        for r in db.execute(f"SELECT min(ts) FROM {WIDE} WHERE job_id = ? AND node = ? AND step = ?", key)
        if r[0] is not None
    ]
    for hour, blob in db.execute(
        f"SELECT hour, vals FROM {PACKED} WHERE job_id = ? AND node = ? AND step = ? AND col = 'n'"
        " ORDER BY hour",
        key,
    ):
        n = decode(blob)
        first = next((i for i in range(60) if n[i] > 0), None)
        if first is not None:
            found.append(hour + first * MINUTE_MS)
            break
    return min(found) if found else None
