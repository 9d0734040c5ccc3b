"""Job tags (JobMon's JobTag: Id, Name, Type, CreatedBy): efficiency findings and user labels.

A tag is unique by (name, type) and shared by every job run that carries it; removing it from the last
job leaves the tag defined, as in JobMon, so its id stays stable for bookmarks and filters.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from jobpulse.collector.domain.tags import Tag


def _tag(row: Sequence[Any]) -> Tag:
    """A row of (id, name, type, created_by)."""
    return Tag(id=row[0], name=row[1], type=row[2], created_by=row[3])


def add_tag(db: sqlite3.Connection, run_id: int, name: str, type: str, created_by: str) -> Tag:
    """Attach the tag (created if new) to the job run; idempotent. Returns the tag.

    Raises:
        ValueError: empty ``name``, or no job run ``run_id``.
    """
    if not name.strip():
        raise ValueError("name must not be empty")
    if db.execute("SELECT 1 FROM jobs WHERE run_id = ?", (run_id,)).fetchone() is None:
        raise ValueError(f"run_id {run_id} is not a known job run")
    own = not db.in_transaction
    if own:
        db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT INTO tags (name, type, created_by) VALUES (?, ?, ?) ON CONFLICT(name, type) DO NOTHING",
            (name, type, created_by),
        )
        row = db.execute(
            "SELECT id, name, type, created_by FROM tags WHERE name = ? AND type = ?", (name, type)
        ).fetchone()
        db.execute("INSERT OR IGNORE INTO job_tags (run_id, tag_id) VALUES (?, ?)", (run_id, row[0]))
        if own:
            db.execute("COMMIT")
    except BaseException:
        if own:
            db.execute("ROLLBACK")
        raise
    return _tag(row)


def remove_tag(db: sqlite3.Connection, run_id: int, name: str) -> bool:
    """Detach every tag called ``name`` from the job run; False if it carried none."""
    cur = db.execute(
        "DELETE FROM job_tags WHERE run_id = ? AND tag_id IN (SELECT id FROM tags WHERE name = ?)",
        (run_id, name),
    )
    return cur.rowcount > 0


def job_tags(db: sqlite3.Connection, run_id: int) -> list[Tag]:
    """The job run's tags, by type then name."""
    rows = db.execute(
        "SELECT t.id, t.name, t.type, t.created_by FROM job_tags j JOIN tags t ON t.id = j.tag_id"
        " WHERE j.run_id = ? ORDER BY t.type, t.name",
        (run_id,),
    )
    return [_tag(r) for r in rows]


def all_tags(db: sqlite3.Connection, user: str | None = None) -> list[Tag]:
    """Tags in use (on the jobs of ``user`` when given): the choices of the job list's tag filter."""
    sql = (
        "SELECT DISTINCT t.id, t.name, t.type, t.created_by FROM tags t JOIN job_tags jt ON jt.tag_id = t.id"
    )
    params: list[Any] = []
    if user is not None:
        sql += " JOIN jobs j ON j.run_id = jt.run_id WHERE j.user_name = ?"
        params.append(user)
    return [_tag(r) for r in db.execute(sql + " ORDER BY t.name", params)]


def search_tags(db: sqlite3.Connection, pattern: str, user: str | None = None) -> list[Tag]:
    """Tags in use (on the jobs of ``user`` when given) whose name matches the LIKE ``pattern``
    (``ESCAPE '\\'``), by name."""
    sql = (
        "SELECT DISTINCT t.id, t.name, t.type, t.created_by FROM tags t JOIN job_tags jt ON jt.tag_id = t.id"
    )
    params: list[Any] = []
    if user is not None:
        sql += " JOIN jobs j ON j.run_id = jt.run_id WHERE j.user_name = ? AND"
        params.append(user)
    else:
        sql += " WHERE"
    params.append(pattern)
    return [_tag(r) for r in db.execute(sql + " t.name LIKE ? ESCAPE '\\' ORDER BY t.name, t.id", params)]


def tags_of_runs(db: sqlite3.Connection, run_ids: list[int]) -> dict[int, list[Tag]]:
    """The tags of many runs in one query (the job list shows each job's tags), by name."""
    result: dict[int, list[Tag]] = {r: [] for r in run_ids}
    if not run_ids:
        return result
    rows = db.execute(
        f"""SELECT jt.run_id, t.id, t.name, t.type, t.created_by FROM job_tags jt JOIN tags t
            ON t.id = jt.tag_id WHERE jt.run_id IN ({", ".join("?" for _ in run_ids)}) ORDER BY t.name""",
        run_ids,
    )
    for r in rows:
        result[r[0]].append(_tag(r[1:]))
    return result
