"""Ingest throughput: N simulated agents stream into a real collector over loopback, real SQLite file.

    scripts/dev.sh run python bench/ingest.py [--agents 200] [--duration 10] [--jobs 8]

Each simulated agent opens the real gRPC stream (hello, then batches, acks back) and sends batches
as fast as the collector acknowledges them, keeping up to --window batches in flight like the real
agent. A batch is one tick of a node: --jobs job rows (columnar JobSamples) with 13 measured metrics
each (the 3 GPU columns are NaN: no GPU) plus one node sample. "Samples" are measured metric values
of job rows: 8 jobs x 13 metrics = 104 per batch.

Figure: samples committed per second (counted from the collector's acks, which come only after the
commit, and checked against the database at the end). Baseline in the same run: plain sqlite3
executemany of the same rows into the same schema (same migrations, same PRAGMAs) in a fresh file,
in transactions of 10,000 rows. Printed: both figures and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS, migrate
from jobpulse.collector.store.sqlite import connect
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

MEASURED = [c for c in JOB_SAMPLE_COLUMNS if not c.startswith("gpu_")]
T0 = 1_760_000_000_000


def make_batch(agent: int, seq: int, jobs: int) -> pb.Batch:
    batch = pb.Batch(seq=seq)
    j = batch.jobs
    t = T0 + seq * 1000
    for k in range(jobs):
        j.job_id.append(str(1000 + agent * jobs + k))
        j.step.append("")
        j.time_ms.append(t)
    for i, column in enumerate(JOB_SAMPLE_COLUMNS):
        values = getattr(j, column)
        if column in MEASURED:
            values.extend(float(seq * (i + 1) + k) for k in range(jobs))
        else:
            values.extend([math.nan] * jobs)
    batch.node.append(pb.NodeSample(time_ms=t, cpu_percent=50.0, mem_used_bytes=1e9, load1=1.0))
    return batch


class SimAgent:
    def __init__(self, index: int, jobs: int, window: int, bundle: int) -> None:
        self.index, self.jobs, self.window, self.bundle = index, jobs, window, bundle
        self.acked = 0
        self._acks = asyncio.Event()

    async def _requests(self, stop: asyncio.Event) -> object:
        yield pb.AgentMessage(
            hello=pb.Hello(node=f"sim{self.index:04d}", cluster="bench", stream_id=f"s{self.index}")
        )
        seq = 0
        while not stop.is_set():
            if seq - self.acked >= self.window:
                self._acks.clear()
                await self._acks.wait()
                continue
            if self.bundle <= 1:
                seq += 1
                yield pb.AgentMessage(batch=make_batch(self.index, seq, self.jobs))
                continue
            # Like the real agent with a backlog: consecutive batches in one message.
            n = min(self.bundle, self.window - (seq - self.acked))
            batches = [make_batch(self.index, seq + i + 1, self.jobs) for i in range(n)]
            seq += n
            yield pb.AgentMessage(batches=pb.Batches(batches=batches))

    async def run(self, target: str, stop: asyncio.Event) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            call = pb_grpc.IngestStub(channel).Stream(self._requests(stop))
            async for message in call:
                if message.WhichOneof("body") == "ack":
                    self.acked = max(self.acked, message.ack.seq)
                    self._acks.set()
                if stop.is_set() and message.ack.seq:
                    break
            call.cancel()


def cpu_seconds(pid: int) -> float:
    """user+system CPU of a process, from /proc (to see who is starved on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    target: str, agents: int, jobs: int, window: int, bundle: int, warmup: float, duration: float, pid: int,
    cpu: dict[str, float],
) -> tuple[float, int]:  # fmt: skip
    """(batches committed per second in the measured window, total batches acked)."""
    sims = [SimAgent(i, jobs, window, bundle) for i in range(agents)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(target, stop)) for s in sims]
    await asyncio.sleep(warmup)
    start_b, start_t = sum(s.acked for s in sims), time.perf_counter()
    start_c, start_d = cpu_seconds(pid), cpu_seconds(os.getpid())
    await asyncio.sleep(duration)
    end_b, end_t = sum(s.acked for s in sims), time.perf_counter()
    cpu["collector"] = (cpu_seconds(pid) - start_c) / (end_t - start_t)
    cpu["driver"] = (cpu_seconds(os.getpid()) - start_d) / (end_t - start_t)
    stop.set()
    for s in sims:
        s._acks.set()
    await asyncio.wait(tasks, timeout=30)
    return (end_b - start_b) / (end_t - start_t), sum(s.acked for s in sims)


def baseline(path: Path, agents: int, jobs: int, rows_target: int) -> float:
    """Plain executemany of the same rows into the same schema: job rows per second."""
    db = connect(path)
    migrate(db)
    cols = ", ".join(JOB_SAMPLE_COLUMNS)
    sql = (
        f"INSERT OR IGNORE INTO job_samples (job_id, node, step, ts, {cols}) "
        f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in JOB_SAMPLE_COLUMNS)})"
    )
    rows = []
    seq = 0
    while len(rows) < rows_target:
        seq += 1
        for a in range(agents):
            b = make_batch(a, seq, jobs).jobs
            node = f"sim{a:04d}"
            rows.extend(
                zip(
                    [int(x) for x in b.job_id],
                    [node] * jobs,
                    b.step,
                    b.time_ms,
                    *(getattr(b, c) for c in JOB_SAMPLE_COLUMNS),
                    strict=True,
                )
            )
    start = time.perf_counter()
    for i in range(0, len(rows), 10_000):
        db.execute("BEGIN")
        db.executemany(sql, rows[i : i + 10_000])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    stored = db.execute("SELECT count(*) FROM job_samples").fetchone()[0]
    db.close()
    assert stored == len(rows), (stored, len(rows))
    return len(rows) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=8, help="job rows per batch (one tick of a node)")
    parser.add_argument("--window", type=int, default=8, help="batches in flight per agent")
    parser.add_argument(
        "--bundle",
        type=int,
        default=1,
        help="batches per message (1: one tick per message; >1: a replaying agent)",
    )
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    per_row = len(MEASURED)
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="jobpulse-bench-") as tmp:
        state = Path(tmp) / "collector"
        state.mkdir()
        ready = state / "ready.json"
        log = open(state / "collector.log", "wb")  # noqa: SIM115 - lives as long as the collector
        collector = subprocess.Popen(
            [sys.executable, "-m", "jobpulse.collector.cli", "serve", "--state-dir", str(state),
             "--http-port", "0", "--grpc-listen", "127.0.0.1:0", "--ready-file", str(ready)],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "JOBPULSE_LOG_LEVEL": "WARNING"},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                if collector.poll() is not None or time.monotonic() > deadline:
                    print((state / "collector.log").read_text()[-2000:], file=sys.stderr)
                    return 1
                time.sleep(0.1)
            port = json.loads(ready.read_text())["grpc_port"]
            batches_s, total = asyncio.run(
                drive(
                    f"127.0.0.1:{port}",
                    args.agents,
                    args.jobs,
                    args.window,
                    args.bundle,
                    args.warmup,
                    args.duration,
                    collector.pid,
                    cpu,
                )
            )
        finally:
            collector.send_signal(signal.SIGTERM)
            collector.wait(timeout=30)
            log.close()
        with sqlite3.connect(state / "jobpulse.db") as db:
            rows = db.execute("SELECT count(*) FROM job_samples").fetchone()[0]
        # Batches committed while the run was being stopped are stored but their acks were not read.
        if not total * args.jobs <= rows <= (total + args.agents * args.window) * args.jobs:
            print(f"MISMATCH: acked {total} batches = {total * args.jobs} rows, database has {rows}")
            return 1
        ingest_samples = batches_s * args.jobs * per_row
        base_rows = baseline(Path(tmp) / "baseline.db", args.agents, args.jobs, max(200_000, rows))
        base_samples = base_rows * per_row
    print(
        f"agents={args.agents} jobs/batch={args.jobs} metrics/job={per_row} window={args.window} "
        f"bundle={args.bundle} cpus={os.cpu_count()} load1={os.getloadavg()[0]:.1f}"
    )
    print(
        f"cpu in the measured window: collector {cpu['collector']:.0%} of a core, load generator {cpu['driver']:.0%}"
    )
    print(f"collector: {batches_s:,.0f} batches/s = {batches_s * args.jobs:,.0f} job rows/s = "
          f"{ingest_samples:,.0f} samples/s committed ({rows:,} rows checked in the database)")  # fmt: skip
    print(f"baseline sqlite3 executemany: {base_rows:,.0f} rows/s = {base_samples:,.0f} samples/s")
    print(
        f"ratio collector/baseline: {ingest_samples / base_samples:.2f} (goal >= 0.5; goal >= 1,000,000 samples/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
