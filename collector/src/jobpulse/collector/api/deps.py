"""Dependency providers shared by route modules."""

from __future__ import annotations

from jobpulse.collector.store.sqlite import SqliteStore
from litestar.datastructures import State


def provide_store(state: State) -> SqliteStore:
    store: SqliteStore = state.store
    return store
