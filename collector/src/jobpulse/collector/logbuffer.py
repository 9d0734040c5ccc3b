"""The collector's recent log lines in memory, for admins watching WS /api/admin/livelog.

A logging handler keeps the last N formatted lines in a bounded deque and hands
each new line to every subscriber's queue as it is logged (the WebSocket waits
on its queue; nothing polls). Records can come from any thread (the SQLite
writer, gRPC), so delivery goes through ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SUBSCRIBER_QUEUE = 1000  # a client this far behind loses lines rather than growing memory


class LogBuffer(logging.Handler):
    """Bounded ring buffer of formatted log lines with live subscribers."""

    def __init__(self, capacity: int = 1000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter(FORMAT))
        self._lines: deque[str] = deque(maxlen=max(1, capacity))
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = set()
        self._mutex = threading.Lock()
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # never let logging break the caller
            self.handleError(record)
            return
        with self._mutex:
            self._lines.append(line)
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(self._offer, queue, line)
            except RuntimeError:  # loop closed: that subscriber is gone
                self.unsubscribe(queue)

    def _offer(self, queue: asyncio.Queue[str], line: str) -> None:
        try:
            queue.put_nowait(line)
        except asyncio.QueueFull:
            self.dropped += 1

    def recent(self) -> list[str]:
        with self._mutex:
            return list(self._lines)

    def subscribe(self) -> tuple[list[str], asyncio.Queue[str]]:
        """The buffered lines and a queue for every later line, taken atomically so none is missed
        or sent twice."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE)
        with self._mutex:
            self._subscribers.add((asyncio.get_running_loop(), queue))
            return list(self._lines), queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        with self._mutex:
            self._subscribers = {s for s in self._subscribers if s[1] is not queue}

    @property
    def subscriber_count(self) -> int:
        with self._mutex:
            return len(self._subscribers)
