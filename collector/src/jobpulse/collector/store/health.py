"""The database's health as ``jobpulse-collector doctor`` reports it, read without changing anything.

Opened read-only (``mode=ro``), never migrated: a doctor must be safe to run against a database a newer
collector wrote (a downgrade), while the collector runs, and as a user who may not write it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from jobpulse.collector.store.migrations import LATEST


class DatabaseUnreadable(Exception):
    """Not a database, or not readable by this user; the message is SQLite's."""


@dataclass(frozen=True)
class DatabaseHealth:
    """``check`` is SQLite's own verdict ("ok" or its first problems); versions as PRAGMA user_version."""

    path: Path
    schema_version: int
    code_version: int
    check: str
    journal_mode: str
    size_bytes: int


def database_health(path: Path, full: bool = False) -> DatabaseHealth:
    """Integrity and schema version of the database at ``path`` (which must exist).

    ``quick_check`` by default (minutes on a large database become seconds); ``full`` runs
    ``integrity_check``, which also compares every index with its table.

    Raises:
        DatabaseUnreadable: not a database, or unreadable (the doctor reports the message).
    """
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            rows = db.execute("PRAGMA integrity_check(5)" if full else "PRAGMA quick_check(5)").fetchall()
            check = "; ".join(str(r[0]) for r in rows)
            mode = str(db.execute("PRAGMA journal_mode").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise DatabaseUnreadable(str(exc)) from exc
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return DatabaseHealth(path, version, LATEST, check, mode, size)
