"""Crash soak: SIGKILL the agent and the collector at random moments while data streams.

JOBPULSE_SOAK_KILLS scales it (default 50 kills, a couple of minutes on 2 busy cores).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from delivery import agent, agent_killed_while_starting, assert_exactly_once, drain, gaps, stored
from support import start_collector, stop

KILLS = int(os.environ.get("JOBPULSE_SOAK_KILLS", "50"))
# Small segments (64 KiB: a few dozen batches) so the trim (state, then delete) runs all the time.
SPOOL = {"JOBPULSE_SPOOL_MAX_BYTES": str(512 * 1024)}


def test_crash_soak(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("JOBPULSE_SOAK_SEED", str(time.time_ns()))))
    collector = start_collector(tmp_path / "collector")
    port = collector.grpc_port
    state = tmp_path / "agent"
    proc = agent(state, collector.grpc_target, "soak1", **SPOOL)
    kills = {"agent": 0, "collector": 0, "agent while starting": 0}
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.0, 0.6))  # a random moment: mid-append, mid-commit, mid-trim
            if rng.random() < 0.5:
                stop(proc, signal.SIGKILL)
                kills["agent"] += 1
                if rng.random() < 0.25:  # and once more while it recovers its spool
                    agent_killed_while_starting(
                        state, collector.grpc_target, "soak1", rng.uniform(0, 0.8), **SPOOL
                    )
                    kills["agent while starting"] += 1
                proc = agent(state, collector.grpc_target, "soak1", **SPOOL)
            else:
                stop(collector.proc, signal.SIGKILL)
                kills["collector"] += 1
                collector = start_collector(tmp_path / "collector", grpc_port=port)
        stop(proc, signal.SIGKILL)
        made = drain(state, collector, "soak1", **SPOOL)
        assert kills["agent"] + kills["collector"] == KILLS
        assert len(made.seqs) > KILLS
        assert_exactly_once(collector, "soak1", made)
        assert gaps(collector, "soak1") == 0
        assert len(stored(collector, "soak1")[0]) == len(made.node_ts)
        assert not list((state / "spool").glob("lost-*")), "the agent lost its spool state"
        trimmed = list((state / "spool" / "acked").glob("seg-*.jps"))
        assert len(trimmed) > KILLS // 4, "the soak did not exercise the spool trim"
    finally:
        stop(proc)
        stop(collector.proc)
