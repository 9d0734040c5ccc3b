"""Batches waiting for the collector's acknowledgement.

Foundation version: kept in memory, bounded, trimmed only up to the ack.
Sequence numbers are unique per ``stream_id``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict


class Spool:
    """Ordered, bounded store of serialized batches keyed by sequence number."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.stream_id = uuid.uuid4().hex
        self.max_bytes = max_bytes
        self._records: OrderedDict[int, bytes] = OrderedDict()
        self._bytes = 0
        self._next_seq = 1
        self.dropped_batches = 0
        self.changed = asyncio.Event()

    def next_seq(self) -> int:
        return self._next_seq

    def append(self, seq: int, payload: bytes) -> None:
        if seq != self._next_seq:
            raise ValueError(f"spool expected seq {self._next_seq}, got {seq}")
        self._records[seq] = payload
        self._bytes += len(payload)
        self._next_seq += 1
        while self._bytes > self.max_bytes and len(self._records) > 1:
            _, dropped = self._records.popitem(last=False)
            self._bytes -= len(dropped)
            self.dropped_batches += 1
        self.changed.set()

    def pending(self, after: int) -> list[tuple[int, bytes]]:
        """Records with seq > after, oldest first."""
        return [(seq, data) for seq, data in self._records.items() if seq > after]

    def ack(self, seq: int) -> None:
        while self._records:
            first = next(iter(self._records))
            if first > seq:
                break
            self._bytes -= len(self._records.pop(first))

    def __len__(self) -> int:
        return len(self._records)
