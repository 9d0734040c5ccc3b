"""Store errors that callers map to protocol answers (gRPC status, HTTP 4xx)."""

from __future__ import annotations


class BatchError(ValueError):
    """A batch that cannot be stored as sent (ragged columns, non-numeric job id); nothing of it is stored."""

    seq: int = 0  # which batch, when the caller knows it


class StoreUnavailable(RuntimeError):
    """The database cannot do this now, through no fault of the request; the same call may work later.

    The HTTP API answers 503 with ``reason`` and a ``Retry-After`` of ``retry_after`` seconds; the
    store logs the condition once when it starts and once when it ends, not per refused call."""

    retry_after: int = 30

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreFull(StoreUnavailable):
    """The database's disk (or SQLite's max_page_count) is full: SQLITE_FULL or ENOSPC."""
