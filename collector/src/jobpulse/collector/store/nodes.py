"""Which nodes are up: an agent that has been silent for ``down_after`` seconds counts as down."""

from __future__ import annotations

import sqlite3

from jobpulse.collector.domain.nodes import NodeStatus


def list_nodes(db: sqlite3.Connection, now: float, down_after: float) -> list[NodeStatus]:
    """Every node the collector has heard from, with ``state`` "up" or "down" and ``last_seen``.

    ``last_seen`` (epoch seconds) moves on every hello and every stored batch, so a node whose agent
    is connected but stuck, or whose stream died silently, turns "down" after ``down_after``.
    """
    rows = db.execute(
        "SELECT name, cluster, agent_version, cpus, memory_bytes, boot_time, first_seen, last_seen"
        " FROM nodes ORDER BY name"
    ).fetchall()
    return [
        NodeStatus(
            name=row["name"],
            cluster=row["cluster"],
            agent_version=row["agent_version"],
            cpus=row["cpus"],
            memory_bytes=row["memory_bytes"],
            boot_time=row["boot_time"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            silent_seconds=max(0.0, now - row["last_seen"]),
            state="down" if now - row["last_seen"] > down_after else "up",
        )
        for row in rows
    ]
