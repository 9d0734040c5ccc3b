"""Writing packed 1-minute hours: the 1-hour pass merges wide minutes into them (format: ``packed.py``).

An hour is packed once, when complete, and again only when late minutes arrive for it; its 1-hour
rollup row is computed from the merged values, with the rules the SQL rollup of wide rows had.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from operator import mul
from typing import Any

from jobpulse.collector.store.packed import (
    COLUMNS,
    HOUR_MS,
    PACKED,
    POS,
    WIDE,
    Hour,
    encode,
    fetch,
    merge,
    selection,
)

# An hour is packed once it has this many minutes: below, its wide rows are smaller than 39 packed rows
# would be, and queries still read few of them (a short job's whole life).
PACK_MIN_MINUTES = 30


def pack_series(
    db: sqlite3.Connection, job_id: int, node: str, step: str, lo: int, hi: int
) -> dict[int, Hour]:
    """Merge the wide minutes of one series in [lo, hi) into their packed hours; returns those hours.

    ``lo`` and ``hi`` are hour-aligned. The hours' existing packed rows are read, the wide minutes laid
    over them, the 39 rows of each hour written back and the wide rows deleted: the caller's
    transaction makes that one step. Only hours that have wide rows are touched. An hour with fewer
    than ``PACK_MIN_MINUTES`` minutes and no packed rows yet stays wide (smaller that way: a packed
    hour costs ~20 KB whatever its minutes, a wide minute ~400 bytes); it is still returned, so its
    1-hour row is computed like any other.
    """
    key = (job_id, node, step)
    touched = {
        r[0]
        for r in db.execute(
            f"SELECT DISTINCT ts / {HOUR_MS} * {HOUR_MS} FROM {WIDE}"
            " WHERE job_id = ? AND node = ? AND step = ? AND ts >= ? AND ts < ?",
            (*key, lo, hi),
        )
    }
    if not touched:
        return {}
    lo, hi = min(touched), max(touched) + HOUR_MS
    # Usually the hour is new: one seek on column n says so, instead of one per column (39).
    exists = db.execute(
        f"SELECT 1 FROM {PACKED} WHERE job_id = ? AND node = ? AND step = ? AND col = 'n' AND hour >= ?"
        " AND hour < ? LIMIT 1",
        (*key, lo, hi),
    ).fetchone()
    cols, packed, wide = fetch(db, job_id, step, [node], COLUMNS, lo, hi, packed_rows=exists is not None)
    already = packed.get(node, {}).get("n", {})
    hours = {
        hour: h
        for hour, h in merge(cols, packed.get(node, {}), wide.get(node, [])).items()
        if hour in touched
    }
    write = sorted(
        hour
        for hour, h in hours.items()
        if hour in already or sum(1 for k in h["n"] if k > 0) >= PACK_MIN_MINUTES
    )
    db.executemany(
        f"INSERT OR REPLACE INTO {PACKED} (job_id, node, step, col, hour, vals) VALUES (?, ?, ?, ?, ?, ?)",
        [(*key, c, hour, encode(values)) for hour in write for c, values in hours[hour].items()],
    )
    db.executemany(
        f"DELETE FROM {WIDE} WHERE job_id = ? AND node = ? AND step = ? AND ts >= ? AND ts < ?",
        [(*key, hour, hour + HOUR_MS) for hour in write],
    )
    return hours


def aggregate(
    cols: Sequence[str], chunks: Iterable[tuple[Hour, Sequence[int] | None]]
) -> tuple[float, list[float | None]]:
    """(samples, value per column) of some minutes, with the rules of the SQL rollup of wide rows.

    A chunk is an hour and the minutes of it to take (:func:`packed.selection`; None: all 60, taken as
    whole arrays). A column's suffix says how it combines: means (``_avg``) are weighted by the minute's
    samples; ``_min`` is the minimum, anything else (``_max``, and a counter's ``_last``: its maximum, it
    only grows) the maximum; NaN is skipped and a column never measured is None. Sums are taken hour by
    hour, then across the hours in the order given. Used for 1-hour rows and job summaries alike.
    """
    # per column: None for a mean, else min or max
    hows = [None if c.endswith("_avg") else (min if c.endswith("_min") else max) for c in cols]
    count = 0.0
    sums = [[0.0, 0.0] for _ in cols]  # for means: sum of value x samples, sum of samples (where known)
    extremes: list[list[float]] = [[] for _ in cols]  # for min and max: one per hour
    for h, idx in chunks:
        n = h["n"]
        samples: Sequence[float] = n if idx is None else [n[i] for i in idx]
        if not samples:
            continue
        weight = sum(samples)
        count += weight
        for c, how, acc, found in zip(cols, hows, sums, extremes, strict=True):
            a = h[c]
            values: Sequence[float] = a if idx is None else [a[i] for i in idx]
            total = sum(values)
            clean = total == total  # no NaN (the common case): whole columns at once
            if how is None:
                if clean:
                    acc[0] += sum(map(mul, values, samples))
                    acc[1] += weight
                else:
                    pairs = [(v, k) for v, k in zip(values, samples, strict=True) if v == v]
                    acc[0] += sum(v * k for v, k in pairs)
                    acc[1] += sum(k for _, k in pairs)
                continue
            known = values if clean else [v for v in values if v == v]
            if known:
                found.append(how(known))
    out: list[float | None] = []
    for how, (weighted, known_weight), found in zip(hows, sums, extremes, strict=True):
        if how is None:
            out.append(weighted / known_weight if known_weight else None)
        else:
            out.append(how(found) if found else None)
    return count, out


def hour_row(h: Hour) -> list[Any]:
    """The 1-hour rollup row (``rollup_value_columns`` order) of one packed hour, as the SQL rollup did."""
    count, values = aggregate(COLUMNS[1:], [(h, selection(h))])
    return [int(count), *values]


def pack_all(db: sqlite3.Connection) -> int:
    """Pack the wide minutes of hours already rolled up to 1 hour (schema migration v6); returns hours seen.

    Minutes of hours the 1-hour pass has not reached yet (``dirty_1h_ms`` of the series) stay wide: that
    pass packs them, as it does for new data. Hours under ``PACK_MIN_MINUTES`` minutes stay wide too.
    """
    series = db.execute(
        f"SELECT w.job_id, w.node, w.step, coalesce(s.dirty_1h_ms, {POS}) FROM"
        f" (SELECT DISTINCT job_id, node, step FROM {WIDE}) AS w LEFT JOIN job_series AS s"
        " ON s.job_id = w.job_id AND s.node = w.node AND s.step = w.step"
    ).fetchall()
    hours = 0
    for job_id, node, step, upto in series:
        hours += len(pack_series(db, job_id, node, step, -POS, upto - upto % HOUR_MS))
    return hours
