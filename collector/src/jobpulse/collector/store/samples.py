"""Sample series queries."""

from __future__ import annotations

import math
import sqlite3
from typing import Any


def job_samples(
    db: sqlite3.Connection,
    job_id: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
    step: str = "",
) -> list[dict[str, Any]]:
    """Raw samples of a job, per node in time order; +inf (unlimited) becomes None for JSON."""
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
