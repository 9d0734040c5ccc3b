"""Fixtures for every test directory (tests/ is on sys.path): cheap password hashes in process, and no
test process (nor any daemon or hook it starts) reads the host's /etc/jobpulse files."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cheap_hashes import CHEAP_HASHER
from jobpulse.collector.auth import passwords

# A file that never exists: settings fall back to their defaults and the environment, as on a fresh machine,
# whatever a jobpulse package installed on this host put in /etc/jobpulse. Subprocesses inherit it.
NO_HOST_CONFIG = "/nonexistent/jobpulse-tests/no-config.toml"
os.environ.setdefault("JOBPULSE_AGENT_CONFIG", NO_HOST_CONFIG)
os.environ.setdefault("JOBPULSE_COLLECTOR_CONFIG", NO_HOST_CONFIG)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    """argon2id at its lowest cost for the whole session (see cheap_hashes.py for why and what checks
    the product's own cost)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", CHEAP_HASHER)
        patch.setattr(passwords, "_DUMMY_HASH", CHEAP_HASHER.hash("not-a-password"))
        yield
