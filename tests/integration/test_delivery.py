"""Delivery that loses nothing: real collector and agent processes, SIGKILLed, on loopback."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from delivery import agent, assert_exactly_once, drain, gaps, produced, stored
from support import start_collector, stop, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_collector_sigkill_while_agent_streams(tmp_path: Path) -> None:
    collector = start_collector(tmp_path / "collector")
    port = collector.grpc_port
    proc = agent(tmp_path / "agent", collector.grpc_target, "kc1")
    try:
        wait_for(lambda: len(stored(collector, "kc1")[0]) >= 20, 30, "samples before the kill")
        stop(collector.proc, signal.SIGKILL)
        time.sleep(1.5)  # the agent keeps sampling into its spool meanwhile
        collector = start_collector(tmp_path / "collector", grpc_port=port)
        before = len(stored(collector, "kc1")[0])
        wait_for(lambda: len(stored(collector, "kc1")[0]) > before + 20, 60, "replay after the restart")
    finally:
        stop(proc)
    try:
        made = drain(tmp_path / "agent", collector, "kc1")
        assert len(made.seqs) > 40
        assert_exactly_once(collector, "kc1", made)
        assert gaps(collector, "kc1") == 0
    finally:
        stop(collector.proc)


def test_agent_sigkill_and_restart_replays_its_spool(tmp_path: Path) -> None:
    collector = start_collector(tmp_path / "collector")
    state = tmp_path / "agent"
    try:
        proc = agent(state, collector.grpc_target, "ka1")
        wait_for(lambda: len(stored(collector, "ka1")[0]) >= 10, 30, "first samples")
        stop(proc, signal.SIGKILL)
        first_run = produced(state / "spool")
        proc = agent(state, collector.grpc_target, "ka1")
        wait_for(lambda: len(stored(collector, "ka1")[0]) >= len(first_run.seqs) + 10, 30, "more samples")
        stop(proc, signal.SIGKILL)
        made = drain(state, collector, "ka1")
        # The restarted agent continued its stream: same stream id, sequence numbers never reused.
        with __import__("sqlite3").connect(collector.state / "jobpulse.db") as conn:
            streams = conn.execute("SELECT count(*) FROM agent_streams WHERE node = 'ka1'").fetchone()[0]
        assert streams == 1
        assert made.seqs[: len(first_run.seqs)] == first_run.seqs
        assert_exactly_once(collector, "ka1", made)
    finally:
        stop(collector.proc)


def test_collector_down_longer_than_the_spool_holds(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "agent"
    limit = 16 * 1024
    proc = agent(state, f"127.0.0.1:{port}", "kf1", JOBPULSE_SPOOL_MAX_BYTES=str(limit))
    try:
        spool = state / "spool"
        deadline = time.monotonic() + 60
        drops = 0
        while drops < 3:  # the spool overflows several times over
            size = sum(f.stat().st_size for f in spool.glob("seg-*.jps"))
            assert size <= limit, f"spool {size} bytes over its {limit} byte limit"
            assert time.monotonic() < deadline, "the spool never filled up"
            drops = (state / "agent.log").read_text().count("spool full, dropped")
            time.sleep(0.05)
        collector = start_collector(tmp_path / "collector", grpc_port=port)
    finally:
        stop(proc)
    try:
        made = drain(state, collector, "kf1", JOBPULSE_SPOOL_MAX_BYTES=str(limit))
        node_ts, _, last = stored(collector, "kf1")
        dropped = gaps(collector, "kf1")
        assert dropped > 0, "the collector was not told about the dropped data"
        # Every batch the agent ever made is either stored or counted in a gap.
        assert len(node_ts) + dropped == last
        assert set(node_ts) <= made.node_ts
    finally:
        stop(collector.proc)


def test_corrupt_and_truncated_spool(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "agent"
    proc = agent(state, f"127.0.0.1:{port}", "kx1")
    wait_for(lambda: len(produced(state / "spool").seqs) >= 30, 30, "a spool to damage")
    stop(proc, signal.SIGKILL)
    before = produced(state / "spool")
    (segment,) = sorted((state / "spool").glob("seg-*.jps"))[:1]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a bad sector in the middle
    segment.write_bytes(bytes(data[:-5]))  # and a torn last record
    proc = agent(state, f"127.0.0.1:{port}", "kx1")
    try:
        log = (state / "agent.log").read_text()
        assert "corrupt record" in log and "torn record" in log
        collector = start_collector(tmp_path / "collector", grpc_port=port)
    finally:
        stop(proc)
    try:
        drain(state, collector, "kx1")
        node_ts, _, _ = stored(collector, "kx1")
        assert before.node_ts - set(node_ts), "the damaged records cannot have been delivered"
        assert len(before.node_ts - set(node_ts)) == 2
        assert gaps(collector, "kx1") == 2  # both damaged records reported as a gap
    finally:
        stop(collector.proc)
