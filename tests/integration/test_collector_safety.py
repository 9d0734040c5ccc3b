"""Issue 14, the defects only a real `jobpulse-collector serve` shows: forwarded headers on loopback (D7),
file permissions under the usual umask and malformed CORS origins (D12), settings out of range (D16)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import start_collector, stop


def serve(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
    """Run ``jobpulse-collector serve ARGS`` until it exits (or ``timeout``: then it is stopped and
    AssertionError names what it printed, since a start that should be refused went on running)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobpulse.collector.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"the collector started although it should not have:\n{out[-2000:]}") from None
    return proc.returncode, out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- D12: permissions under umask 022 ----------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual login umask; inherited by the collector started below
    try:
        yield
    finally:
        os.umask(old)


def test_D12_state_directory_and_database_are_private_under_umask_022(
    tmp_path: Path, umask_022: None
) -> None:
    state = tmp_path / "var" / "lib" / "jobpulse"  # does not exist yet: the collector makes it
    # support.start_collector keeps its ready file and log in tmp_path; the later --state-dir wins
    collector = start_collector(tmp_path, "--state-dir", str(state))
    try:
        collector.login()  # a session row: the WAL has been written
        files = {p.name: mode(p) for p in state.iterdir()}
        assert mode(state) == 0o700
        assert {"jobpulse.db", "jobpulse.db-wal", "jobpulse.db-shm", "jwt-secret"} <= set(files), files
        assert all(m == 0o600 for m in files.values()), {n: oct(m) for n, m in files.items()}
    finally:
        stop(collector.proc)
    assert "Traceback" not in collector.log.read_text()


def test_D12_existing_database_of_ours_is_made_private(tmp_path: Path, umask_022: None) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    (state / "jobpulse.db").touch(mode=0o644)  # what an older version left (empty: migrated now)
    collector = start_collector(tmp_path, "--state-dir", str(state))
    try:
        assert mode(state / "jobpulse.db") == 0o600
        assert mode(state / "jobpulse.db-wal") == 0o600
    finally:
        stop(collector.proc)
    assert "other local users can list it" in collector.log.read_text()  # the 0755 directory is named
