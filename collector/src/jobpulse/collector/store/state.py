"""Small named integers the storage jobs share: rollup and retention watermarks."""

from __future__ import annotations

import sqlite3


def get_state(db: sqlite3.Connection, key: str) -> int | None:
    row = db.execute("SELECT value FROM storage_state WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else None


def set_state(db: sqlite3.Connection, key: str, value: int) -> None:
    """Caller holds the transaction."""
    db.execute(
        "INSERT INTO storage_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
