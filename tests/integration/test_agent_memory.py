"""The running daemon keeps its memory small: no OpenSSL of Python's own, freed heap handed back."""

from __future__ import annotations

from pathlib import Path

from delivery import agent, stored
from support import start_collector, stop, wait_for


def mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split()[-1] for line in maps if len(line.split()) > 5}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_daemon_runs_without_pythons_ssl_and_trims_its_heap(tmp_path: Path) -> None:
    collector = start_collector(tmp_path / "collector")
    proc = agent(tmp_path / "agent", collector.grpc_target, "mem1", tick=0.2)
    try:
        wait_for(lambda: len(stored(collector, "mem1")[0]) >= 3, 30, "samples stored")
        files = mapped_files(proc.pid)
        # gRPC brings its own TLS; Python's ssl module (and libssl with it) was never loaded.
        assert not [f for f in files if "/_ssl." in f or "/libssl.so" in f], sorted(files)
        with open(f"/proc/{proc.pid}/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        # The import-time garbage was given back after the first ticks: RSS is below its peak.
        assert rss_kib(proc.pid) < peak - 1024, (rss_kib(proc.pid), peak)
    finally:
        stop(proc)
        stop(collector.proc)
