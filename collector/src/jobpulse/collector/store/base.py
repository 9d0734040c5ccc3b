"""The storage protocol: named operations over domain values, each owning its transaction.

Why a protocol: SQLite is the embedded default and PostgreSQL comes next; services are written
against these methods only, never against a connection or SQL. ``SqliteStore`` (store/sqlite.py)
implements it; a method that writes runs on the single writer thread in one transaction, a method
that reads runs on a reader connection. Rows are returned as plain dicts keyed by column name.

Sections by area (jobs and series; accounts; configuration and nodes) keep the protocol readable;
``Store`` is all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.runs import RunScope


class JobStore(Protocol):
    """Job runs, their samples and series, tags and summaries."""

    async def get_job(self, job_id: int | JobId) -> dict[str, Any] | None:
        """The newest run of a job number, array task or het component."""
        ...

    async def run_scope(self, run: dict[str, Any]) -> RunScope:
        """Which samples belong to ``run`` (its window and its cluster's nodes)."""
        ...


class AccountStore(Protocol):
    """Users, sessions, API keys, role requests and the audit log."""


@dataclass(frozen=True)
class StoredConfig:
    """The configuration as stored: each edited part as its decoded JSON (None: never edited, the
    defaults apply), and the partitions that jobs ran in."""

    metrics: object | None
    partitions: object | None
    seen_partitions: list[str]


class ConfigStore(Protocol):
    """The API configuration (metric catalogue, partitions) and the nodes."""

    async def stored_config(self) -> StoredConfig:
        """The configuration as stored."""
        ...

    async def update_config(
        self, actor: str, parts: list[str], change: Callable[[StoredConfig], dict[str, str]]
    ) -> StoredConfig:
        """In one write transaction: ``change(current)`` returns the parts to store (key "metrics" or
        "partitions" -> JSON text) or raises (then nothing is written); the edit is audited as
        ``update_config`` of ``parts`` by ``actor``. Returns the configuration as stored after it."""
        ...

    async def nodes(self, down_after: float, now: float) -> list[dict[str, Any]]:
        """Nodes with their state "up"/"down" (silent for more than ``down_after`` s) and last_seen."""
        ...

    async def inventory(self, active_since: float) -> dict[str, int]:
        """``nodes``, ``nodes_active`` (last seen after ``active_since``), ``jobs``, ``jobs_running``."""
        ...


class Store(JobStore, AccountStore, ConfigStore, Protocol):
    """Everything the services need from storage."""
