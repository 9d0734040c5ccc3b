"""Watches node liveness: logs up/down transitions and publishes them on the event bus
(:class:`NodeDown`, :class:`NodeUp`); the API and alerts read the node list from services/nodes.py."""

from __future__ import annotations

import asyncio
import logging

from jobpulse.collector.services.events import EventBus, NodeDown, NodeUp
from jobpulse.collector.services.nodes import NodeService
from jobpulse.collector.store.base import ConfigStore

log = logging.getLogger(__name__)


class NodeWatch:
    """Polls the nodes; a node silent for ``down_after`` seconds is logged (and published) as down once."""

    def __init__(
        self,
        store: ConfigStore,
        down_after: float,
        interval: float | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.nodes = NodeService(store)
        self.down_after = down_after
        self.interval = interval if interval is not None else max(1.0, min(10.0, down_after / 4))
        self.bus = bus
        self.states: dict[str, str] = {}

    async def check(self) -> dict[str, str]:
        """One pass: returns the state of every node and logs (and publishes) each change."""
        for node in await self.nodes.nodes(self.down_after):
            name, state = node.name, node.state
            previous = self.states.get(name)
            if state == "down" and previous != "down":  # a change, or down when first seen
                log.warning("node %s is down: agent silent for %.0f s", name, node.silent_seconds)
                self._publish(NodeDown(name, node.silent_seconds))
            elif state == "up" and previous == "down":
                log.info("node %s is up again", name)
                self._publish(NodeUp(name))
            self.states[name] = state
        return dict(self.states)

    def _publish(self, event: NodeDown | NodeUp) -> None:
        if self.bus is not None:
            self.bus.publish(event)

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("node liveness check failed")
            await asyncio.sleep(self.interval)
