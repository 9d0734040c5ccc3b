"""The nodes: which have reported, and which are up or down (silent for longer than ``down_after``)."""

from __future__ import annotations

import time

from jobpulse.collector.domain.nodes import Inventory, NodeStatus
from jobpulse.collector.store.base import ConfigStore

ACTIVE_WINDOW = 300.0  # seconds: a node that reported within it counts as active in the gauges


class NodeService:
    def __init__(self, store: ConfigStore) -> None:
        self.store = store

    async def nodes(self, down_after: float, now: float | None = None) -> list[NodeStatus]:
        """Every node the collector has heard from, "up" or "down" (silent for more than ``down_after``
        seconds), by name."""
        return await self.store.nodes(down_after, now=time.time() if now is None else now)

    async def inventory(self, now: float | None = None) -> Inventory:
        """Counts for the collector's gauges; active nodes are those that reported in the last
        ``ACTIVE_WINDOW`` seconds."""
        now = time.time() if now is None else now
        return await self.store.inventory(active_since=now - ACTIVE_WINDOW)
