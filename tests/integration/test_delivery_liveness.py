"""A silently dead peer is noticed (gRPC keepalive), and a silent node is marked down."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from delivery import agent, stored
from support import start_collector, stop, wait_for


def test_agent_notices_a_frozen_collector_within_a_minute(tmp_path: Path) -> None:
    collector = start_collector(tmp_path / "collector")
    state = tmp_path / "agent"
    proc = agent(state, collector.grpc_target, "ka-live", tick=0.5)
    try:
        wait_for(lambda: len(stored(collector, "ka-live")[0]) >= 2, 30, "a working stream")
        os.kill(collector.proc.pid, signal.SIGSTOP)  # alive for TCP, silent for gRPC: no FIN, no RST
        frozen = time.monotonic()
        wait_for(lambda: "stream to" in (state / "agent.log").read_text(), 60, "the agent to notice")
        assert time.monotonic() - frozen < 60
    finally:
        os.kill(collector.proc.pid, signal.SIGCONT)
        stop(proc)
        stop(collector.proc)


def test_silent_node_is_marked_down_and_back_up(tmp_path: Path) -> None:
    collector = start_collector(tmp_path / "collector", env={"JOBPULSE_NODE_DOWN_AFTER": "2"})
    proc = agent(tmp_path / "agent", collector.grpc_target, "kd-live", tick=0.3)
    try:
        wait_for(lambda: len(stored(collector, "kd-live")[0]) >= 2, 30, "a working stream")
        os.kill(proc.pid, signal.SIGSTOP)
        wait_for(
            lambda: "node kd-live is down" in collector.log.read_text(), 20, "the node to be marked down"
        )
        os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: "node kd-live is up again" in collector.log.read_text(), 20, "the node to come back")
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        stop(proc)
        stop(collector.proc)
