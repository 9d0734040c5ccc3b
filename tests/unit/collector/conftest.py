"""Collector unit test fixtures (this directory, with storehelp.py, is on sys.path). App-level fixtures: a real collector app over a real SQLite file, driven by Litestar's test client."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from jobpulse.collector.app import create_app
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.auth.passwords import hash_password
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from storehelp import db_of, run_async

ADMIN_PASSWORD = "admin-secret-pw"


@functools.cache
def _hash(password: str) -> str:
    """The fixture users' hashes, made once per test run (cheaply: tests/conftest.py)."""
    return hash_password(password)


@pytest.fixture
def fx_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process in UTC, the local time of the machine the Slurm captures were taken on (sacct prints
    local time; ``sacct --json`` epoch seconds)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def fx_settings(tmp_path: Path) -> CollectorSettings:
    return CollectorSettings(state_dir=tmp_path, admin_password=ADMIN_PASSWORD)


@pytest.fixture
def fx_store(fx_settings: CollectorSettings) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(fx_settings.database_path)
    store.open()
    run_async(ensure_admin(store, fx_settings))
    users.upsert_user(db_of(store), "alice", ["user"], _hash("alice-password"))
    users.upsert_user(db_of(store), "bob", ["user"], _hash("bob-password"))
    yield store
    store.close()


@pytest.fixture
async def fx_client(fx_store: SqliteStore, fx_settings: CollectorSettings) -> AsyncIterator[AsyncTestClient]:
    app = create_app(fx_store, fx_settings)
    async with AsyncTestClient(app=app) as client:
        yield client


async def login(client: AsyncTestClient, username: str, password: str) -> str:
    response = await client.post("/api/login", json={"Username": username, "Password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token
