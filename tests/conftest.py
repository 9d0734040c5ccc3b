"""Fixtures for every test directory (tests/ is on sys.path): cheap password hashes in process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cheap_hashes import CHEAP_HASHER
from jobpulse.collector.auth import passwords


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    """argon2id at its lowest cost for the whole session (see cheap_hashes.py for why and what checks
    the product's own cost)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", CHEAP_HASHER)
        patch.setattr(passwords, "_DUMMY_HASH", CHEAP_HASHER.hash("not-a-password"))
        yield
