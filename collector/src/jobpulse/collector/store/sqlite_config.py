"""The configuration and node methods of :class:`~jobpulse.collector.store.sqlite.SqliteStore`.

The edited metric catalogue and partitions live in the ``api_config`` table as JSON (what they mean is
metric_catalog's and services/config.py's business); the node list is store/nodes.py's.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from jobpulse.collector.domain.nodes import Inventory
from jobpulse.collector.store import users
from jobpulse.collector.store.base import StoredConfig

T = TypeVar("T")

CONFIG_KEYS = ("metrics", "partitions")


def read_config(db: sqlite3.Connection) -> StoredConfig:
    stored = dict(db.execute("SELECT key, value FROM api_config WHERE key IN (?, ?)", CONFIG_KEYS).fetchall())
    seen = [name for (name,) in db.execute("SELECT DISTINCT partition FROM jobs WHERE partition != ''")]
    return StoredConfig(
        metrics=json.loads(stored["metrics"]) if "metrics" in stored else None,
        partitions=json.loads(stored["partitions"]) if "partitions" in stored else None,
        seen_partitions=seen,
    )


def write_config(db: sqlite3.Connection, values: dict[str, str]) -> None:
    """Store each part of ``values`` (key -> JSON text); the caller commits."""
    now = time.time()
    for key, value in values.items():
        if key not in CONFIG_KEYS:
            raise ValueError(f"unknown configuration part {key!r}")
        db.execute(
            "INSERT INTO api_config (key, value, updated) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE"
            " SET value = excluded.value, updated = excluded.updated",
            (key, value, now),
        )


def inventory(db: sqlite3.Connection, active_since: float) -> Inventory:
    nodes, active = db.execute(
        "SELECT count(*), coalesce(sum(last_seen > ?), 0) FROM nodes", (active_since,)
    ).fetchone()
    jobs, running = db.execute("SELECT count(*), coalesce(sum(is_running), 0) FROM jobs").fetchone()
    return Inventory(nodes=nodes, nodes_active=active, jobs=jobs, jobs_running=running)


class SqliteConfig:
    """Mixed into SqliteStore: the ``ConfigStore`` section of the storage protocol (store/base.py)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def stored_config(self) -> StoredConfig:
        return await self._read(read_config)

    async def update_config(
        self, actor: str, parts: list[str], change: Callable[[StoredConfig], dict[str, str]]
    ) -> StoredConfig:
        def run(db: sqlite3.Connection) -> StoredConfig:
            db.execute("BEGIN IMMEDIATE")  # a failure rolls back (SqliteStore._write)
            write_config(db, change(read_config(db)))
            users.audit(db, actor, "update_config", ",".join(parts), {"parts": parts})
            result = read_config(db)
            db.execute("COMMIT")
            return result

        return await self._write(run)

    async def inventory(self, active_since: float) -> Inventory:
        return await self._read(lambda db: inventory(db, active_since))
