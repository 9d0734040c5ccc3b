"""Collector unit test fixtures (this directory, with storehelp.py, is on sys.path). App-level fixtures: a real collector app over a real SQLite file, driven by Litestar's test client."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from jobpulse.collector.app import create_app
from jobpulse.collector.auth import passwords
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.auth.passwords import hash_password
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from storehelp import db_of, run_async

ADMIN_PASSWORD = "admin-secret-pw"


# argon2id at the product's cost (RFC 9106, ~0.1-0.16 s a hash or a check) made every login and every
# fixture admin a tenth of a second: most of the fast tier's time. In-process tests hash with the same
# algorithm at its lowest cost; test_auth.py checks the product's own parameters with the real hasher,
# and the integration tests' collector processes use them throughout.
PRODUCT_HASHER = passwords._hasher
_CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", _CHEAP_HASHER)
        patch.setattr(passwords, "_DUMMY_HASH", _CHEAP_HASHER.hash("not-a-password"))
        yield


@functools.cache
def _hash(password: str) -> str:
    """argon2 costs ~0.16 s a hash by design; the fixture users' hashes are made once per test run."""
    return hash_password(password)


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
