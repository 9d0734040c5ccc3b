"""The running daemon keeps its memory small: no OpenSSL of Python's own, freed heap handed back.

Run both bare and with the ``Environment=`` of the systemd unit (``PYTHONOPTIMIZE=2``,
``MALLOC_ARENA_MAX=2``): the daemon as installed must stream its samples just the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from delivery import agent, stored
from support import start_collector, stop, wait_for

UNIT = Path(__file__).parents[2] / "systemd" / "jobpulse-agent.service"


def unit_environment() -> dict[str, str]:
    env = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value
    return env


def mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split()[-1] for line in maps if len(line.split()) > 5}


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))


@pytest.mark.parametrize("installed", [False, True], ids=["bare", "unit-env"])
def test_daemon_runs_without_pythons_ssl_and_trims_its_heap(tmp_path: Path, installed: bool) -> None:
    env = unit_environment() if installed else {}
    assert not installed or env.get("PYTHONOPTIMIZE") == "2"
    collector = start_collector(tmp_path / "collector")
    proc = agent(tmp_path / "agent", collector.grpc_target, "mem1", tick=0.2, **env)
    try:
        wait_for(lambda: len(stored(collector, "mem1")[0]) >= 3, 30, "samples stored")
        files = mapped_files(proc.pid)
        # gRPC brings its own TLS; Python's ssl module (and libssl with it) was never loaded.
        assert not [f for f in files if "/_ssl." in f or "/libssl.so" in f], sorted(files)
        # The import-time garbage was given back after the first ticks: RSS is below its peak.
        rss, peak = status_kib(proc.pid, "VmRSS"), status_kib(proc.pid, "VmHWM")
        assert rss < peak - 1024, (rss, peak)
    finally:
        stop(proc)
        stop(collector.proc)
