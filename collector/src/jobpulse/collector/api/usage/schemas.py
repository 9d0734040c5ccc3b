"""Seed 000's request bodies as its real clients send them (shared clients/README.md sections 3 and 4)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

_Names = Annotated[list[Annotated[str, msgspec.Meta(max_length=256)]], msgspec.Meta(max_length=10_000)]


class IngestBody(msgspec.Struct):
    """POST /api/data/ingest. The records stay raw here: the service checks each and names
    ``jobs[i].Field`` in its 400, which a typed body could not."""

    hostname: Any = None
    jobs: Any = None


class FilterBody(msgspec.Struct, omit_defaults=True):
    """The front end's FilterRequest (POST /api/dashboard/filter and /charts)."""

    hostname: Annotated[str, msgspec.Meta(max_length=128)]
    start_date: str | None = None
    end_date: str | None = None
    partitions: _Names | None = None
    accounts: _Names | None = None
    users: _Names | None = None
    qos: _Names | None = None
    states: _Names | None = None
    period_type: str = "month"
    account_segments: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    color_by: str | None = None
    complete_periods_only: bool = False
    normalize_node_usage: bool = False
    hide_unused_nodes: bool = False
    sort_by_usage: bool = False
    limit: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 1000  # /filter: rows of ``data`` (jobpulse)
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
