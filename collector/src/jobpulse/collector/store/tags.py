"""Job tags: named labels on job runs (JobMon's job.JobTag), shared by name and type.

Interface agreed with the summary/findings work (issue 5), which owns this module upstream:
``add_tag``, ``remove_tag`` and ``job_tags`` take the run id (``jobs.run_id``), not the Slurm job id,
because a requeued job has several runs.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def _tag(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    return {"Id": row[0], "Name": row[1], "Type": row[2], "CreatedBy": row[3]}


def add_tag(db: sqlite3.Connection, run_id: int, name: str, type: str, created_by: str) -> dict[str, Any]:
    """Attach the tag (created on first use) to the run; idempotent. Returns the JobTag dict
    ``{"Id", "Name", "Type", "CreatedBy"}`` (CreatedBy is whoever created the tag first)."""
    db.execute(
        "INSERT INTO tags (name, type, created_by) VALUES (?, ?, ?) ON CONFLICT(name, type) DO NOTHING",
        (name, type, created_by),
    )
    row = db.execute(
        "SELECT id, name, type, created_by FROM tags WHERE name = ? AND type = ?", (name, type)
    ).fetchone()
    db.execute("INSERT OR IGNORE INTO job_tags (run_id, tag_id) VALUES (?, ?)", (run_id, row[0]))
    return _tag(row)


def remove_tag(db: sqlite3.Connection, run_id: int, name: str) -> bool:
    """Detach every tag called ``name`` from the run. False if it had none."""
    cursor = db.execute(
        "DELETE FROM job_tags WHERE run_id = ? AND tag_id IN (SELECT id FROM tags WHERE name = ?)",
        (run_id, name),
    )
    return cursor.rowcount > 0


def job_tags(db: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    rows = db.execute(
        """SELECT t.id, t.name, t.type, t.created_by FROM job_tags jt JOIN tags t ON t.id = jt.tag_id
           WHERE jt.run_id = ? ORDER BY t.name""",
        (run_id,),
    )
    return [_tag(r) for r in rows]


def all_tags(db: sqlite3.Connection, user: str | None = None) -> list[dict[str, Any]]:
    """Tags in use (on the jobs of ``user`` when given): the choices of the job list's tag filter."""
    sql = (
        "SELECT DISTINCT t.id, t.name, t.type, t.created_by FROM tags t JOIN job_tags jt ON jt.tag_id = t.id"
    )
    params: list[Any] = []
    if user is not None:
        sql += " JOIN jobs j ON j.run_id = jt.run_id WHERE j.user_name = ?"
        params.append(user)
    return [_tag(r) for r in db.execute(sql + " ORDER BY t.name", params)]
