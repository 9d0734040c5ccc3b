"""Helpers for the delivery tests: what an agent produced (its spool) against what the collector stored.

"Produced" is read from the agent's own spool files, with ``spool_keep_acked`` so acknowledged
segments are moved aside instead of deleted: every batch the agent ever made durable is there.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from jobpulse.agent.spool import HEADER, Spool
from jobpulse.proto.v1 import ingest_pb2 as pb
from support import FIXTURES, Collector, start_agent, stop, wait_for

CGROUPS = FIXTURES / "v1" / "sys" / "fs" / "cgroup"  # one static Slurm job (88): job rows every tick


@dataclass
class Produced:
    seqs: list[int] = field(default_factory=list)
    node_ts: set[int] = field(default_factory=set)
    job_rows: set[tuple[int, str, int]] = field(default_factory=set)
    gap_batches: int = 0


def produced(spool_dir: Path) -> Produced:
    """Every valid record in the spool directory and its acked/ archive.

    A running agent moves acknowledged segments into acked/ at any moment: a segment that moves
    between the listing and the read means listing again.
    """
    while True:
        try:
            return _produced(spool_dir)
        except FileNotFoundError:
            continue


def _produced(spool_dir: Path) -> Produced:
    out = Produced()
    files = sorted(spool_dir.glob("seg-*.jps")) + sorted((spool_dir / "acked").glob("seg-*.jps"))
    for path in files:
        data = path.read_bytes()
        pos = 0
        while (record := Spool._parse(data, pos)) is not None:
            seq, _, total = record
            batch = pb.Batch.FromString(data[pos + HEADER.size : pos + total])
            out.seqs.append(seq)
            out.node_ts.update(n.time_ms for n in batch.node)
            out.job_rows.update(
                zip((int(j) for j in batch.jobs.job_id), batch.jobs.step, batch.jobs.time_ms, strict=True)
            )
            out.gap_batches += sum(g.batches for g in batch.gaps)
            pos += total
    out.seqs.sort()
    return out


def db(collector: Collector) -> sqlite3.Connection:
    return sqlite3.connect(collector.state / "jobpulse.db", timeout=30)


def stored(collector: Collector, node: str) -> tuple[list[int], list[tuple[int, str, int]], int]:
    """(node sample times, job rows, last acknowledged seq) as the collector's database holds them."""
    with db(collector) as conn:
        node_ts = [r[0] for r in conn.execute("SELECT ts FROM node_samples WHERE node = ?", (node,))]
        jobs = [
            (r[0], r[1], r[2])
            for r in conn.execute("SELECT job_id, step, ts FROM job_samples WHERE node = ?", (node,))
        ]
        row = conn.execute("SELECT max(last_seq) FROM agent_streams WHERE node = ?", (node,)).fetchone()
    return node_ts, jobs, int(row[0] or 0)


def gaps(collector: Collector, node: str) -> int:
    with db(collector) as conn:
        row = conn.execute("SELECT sum(batches) FROM gaps WHERE node = ?", (node,)).fetchone()
    return int(row[0] or 0)


def agent(state: Path, collector: str, node: str, tick: float = 0.05, **env: str) -> subprocess.Popen[bytes]:
    # A SIGKILLed agent leaves its socket behind; start_agent waits for the new one.
    (state / "agent.sock").unlink(missing_ok=True)
    return start_agent(
        state,
        collector,
        "--node",
        node,
        "--cgroup-root",
        str(CGROUPS),
        tick=tick,
        env={"JOBPULSE_SPOOL_KEEP_ACKED": "1", **env},
    )


def agent_killed_while_starting(state: Path, collector: str, node: str, after: float, **env: str) -> None:
    """Start an agent and SIGKILL it ``after`` seconds later, ready or not (mid spool recovery)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobpulse.agent.cli", "run", "--state-dir", str(state),
         "--socket", str(state / "agent.sock"), "--collector", collector, "--node", node,
         "--cgroup-root", str(CGROUPS), "--tick", "0.05"],
        stdout=open(state / "agent.log", "ab"), stderr=subprocess.STDOUT,
        env={**os.environ, "JOBPULSE_SPOOL_KEEP_ACKED": "1", **env},
    )  # fmt: skip
    time.sleep(after)
    proc.kill()
    proc.wait()


def drain(state: Path, collector: Collector, node: str, **env: str) -> Produced:
    """Let a restarted agent (idle tick) deliver its whole spool; return everything it ever produced."""
    spool = state / "spool"
    before = max(produced(spool).seqs, default=0) if spool.exists() else 0
    proc = agent(state, collector.grpc_target, node, tick=3600, **env)
    try:

        def delivered() -> bool:
            # the restarted agent's first tick spools one batch more: until it has, everything the
            # earlier runs made may already be acknowledged, and that batch would be left unsent
            made = max(produced(spool).seqs, default=0)
            return made > before and stored(collector, node)[2] >= made

        wait_for(delivered, 60, "the spool to be delivered")
    finally:
        stop(proc)
    return produced(state / "spool")


def assert_exactly_once(collector: Collector, node: str, made: Produced) -> None:
    node_ts, job_rows, last = stored(collector, node)
    assert made.seqs == sorted(set(made.seqs)), "the agent reused a sequence number"
    assert last == made.seqs[-1]
    assert len(node_ts) == len(set(node_ts)) == len(made.node_ts)
    assert set(node_ts) == made.node_ts, "node samples lost or invented"
    assert len(job_rows) == len(set(job_rows)) == len(made.job_rows)
    assert set(job_rows) == made.job_rows, "job samples lost or invented"
