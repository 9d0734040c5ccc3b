"""The storage protocol: named operations over domain values, each owning its transaction.

Why a protocol: SQLite is the embedded default and PostgreSQL comes next; services are written
against these methods only, never against a connection or SQL. ``SqliteStore`` (store/sqlite.py)
implements it; a method that writes runs on the single writer thread in one transaction, a method
that reads runs on a reader connection. Rows are returned as plain dicts keyed by column name.

Sections by area (jobs and series; accounts; configuration and nodes) keep the protocol readable;
``Store`` is all of them.
"""

from __future__ import annotations

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


class ConfigStore(Protocol):
    """The API configuration (metric catalogue, partitions) and the nodes."""


class Store(JobStore, AccountStore, ConfigStore, Protocol):
    """Everything the services need from storage."""
