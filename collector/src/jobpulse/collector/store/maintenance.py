"""Database upkeep: WAL checkpoints, PRAGMA optimize, and online backups.

The backup uses SQLite's backup API from its own connection: in WAL mode it reads one consistent
snapshot while the collector keeps writing, and the copy is a plain database file (journal mode
DELETE) that opens anywhere with ``sqlite3``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jobpulse.common import statefile


def checkpoint(db: sqlite3.Connection) -> tuple[int, int, int]:
    """Copy the WAL back into the database (PASSIVE: never waits for readers). (busy, log, checkpointed)."""
    row = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def optimize(db: sqlite3.Connection) -> None:
    """Refresh the planner's statistics where they are stale (cheap; SQLite decides what to analyze)."""
    db.execute("PRAGMA optimize")


def backup(source: Path, dest: Path) -> int:
    """Copy ``source`` to ``dest`` while other processes may be writing it. Returns the pages copied.

    One step (pages=-1) copies one read snapshot: a step-wise copy would restart every time the
    writer commits and might never finish under steady ingest.

    Raises:
        FileExistsError: ``dest`` exists (a backup never overwrites).
        FileNotFoundError: ``source`` does not exist.
    """
    if not source.exists():
        raise FileNotFoundError(f"database {source} does not exist")
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose a new path")
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    statefile.create_private(tmp)  # a copy of the hashes and sessions: 0600 like the database
    src = sqlite3.connect(source, timeout=30)
    out = sqlite3.connect(tmp)
    try:
        src.backup(out, pages=-1)
        out.execute("PRAGMA journal_mode=DELETE")
        pages = int(out.execute("PRAGMA page_count").fetchone()[0])
        check = out.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise RuntimeError(f"backup failed its integrity check: {check}")
    finally:
        out.close()
        src.close()
    tmp.rename(dest)
    return pages
