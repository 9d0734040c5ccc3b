"""Store errors that callers map to protocol answers (gRPC status, HTTP 4xx)."""

from __future__ import annotations


class BatchError(ValueError):
    """A batch that cannot be stored as sent (ragged columns, non-numeric job id); nothing of it is stored."""

    seq: int = 0  # which batch, when the caller knows it
