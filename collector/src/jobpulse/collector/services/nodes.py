"""The nodes: which have reported, and which are up or down (silent for longer than ``down_after``)."""

from __future__ import annotations

import time
from typing import Any

from jobpulse.collector.store.base import ConfigStore

ACTIVE_WINDOW = 300.0  # seconds: a node that reported within it counts as active in the gauges


class NodeService:
    def __init__(self, store: ConfigStore) -> None:
        self.store = store

    async def nodes(self, down_after: float, now: float | None = None) -> list[dict[str, Any]]:
        """Every node the collector has heard from, with ``state`` "up"/"down", ``last_seen`` and
        ``silent_seconds``, by name."""
        return await self.store.nodes(down_after, now=time.time() if now is None else now)

    async def inventory(self, now: float | None = None) -> dict[str, int]:
        """Counts for the collector's gauges: ``nodes``, ``nodes_active`` (reported in the last
        ``ACTIVE_WINDOW`` seconds), ``jobs`` and ``jobs_running``."""
        now = time.time() if now is None else now
        return await self.store.inventory(active_since=now - ACTIVE_WINDOW)
