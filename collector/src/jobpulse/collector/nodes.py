"""Watches node liveness and logs up/down transitions (the API and alerts read store.nodes)."""

from __future__ import annotations

import asyncio
import logging
import time

from jobpulse.collector.store.sqlite import SqliteStore

log = logging.getLogger(__name__)


class NodeWatch:
    """Polls the nodes table; a node silent for ``down_after`` seconds is logged as down once."""

    def __init__(self, store: SqliteStore, down_after: float, interval: float | None = None) -> None:
        self.store = store
        self.down_after = down_after
        self.interval = interval if interval is not None else max(1.0, min(10.0, down_after / 4))
        self.states: dict[str, str] = {}

    async def check(self) -> dict[str, str]:
        """One pass: returns the state of every node and logs each change."""
        nodes = await self.store.nodes(self.down_after, now=time.time())
        for node in nodes:
            name, state = node["node"], node["state"]
            previous = self.states.get(name)
            if previous is not None and previous != state:
                if state == "down":
                    log.warning("node %s is down: agent silent for %.0f s", name, node["silent_seconds"])
                else:
                    log.info("node %s is up again", name)
            elif previous is None and state == "down":
                log.warning("node %s is down: agent silent for %.0f s", name, node["silent_seconds"])
            self.states[name] = state
        return dict(self.states)

    async def run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("node liveness check failed")
            await asyncio.sleep(self.interval)
