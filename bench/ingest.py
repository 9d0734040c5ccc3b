"""Ingest throughput: N simulated agents stream into a real collector over loopback, real SQLite file.

    scripts/dev.sh run python bench/ingest.py [--agents 200] [--duration 30] [--jobs 8]
    scripts/dev.sh run python bench/ingest.py --bundle 1 --window 8   # one tick per message

Each simulated agent opens the real gRPC stream (hello, then batches, acks back) and sends batches
as fast as the collector acknowledges them, framed as the real agent frames them while it has a
backlog of 64 batches or more (replay, catch-up: what "as fast as possible" means for an agent): up
to --window batches in flight (the agent's MAX_IN_FLIGHT, 64) and up to --bundle of them per
message (``Batches``; the agent's bundles also stop at 512 KiB, far above 64 of these ~1.2 KB
batches, but reached first by batches of ~50 jobs or more). A live agent sends one tick per message:
``--bundle 1 --window 8``, where the collector's per-message cost dominates (figures for both in
bench/RESULTS.md). A batch is one tick of a node: --jobs job rows (columnar JobSamples) with 13
measured metrics each (realistic non-integer values; the 3 GPU columns are NaN: no GPU) plus one node sample,
with its own sequence number and time stamps. "Samples" are measured metric values of job rows:
8 jobs x 13 metrics = 104 per batch. The simulated agents send pre-encoded bytes (see ``Encoder``)
so that the two cores go to the collector; the bench prints the CPU each side got, the collector's
CPU per committed sample (a figure less sensitive to other load on the machine), and its busiest
threads (``sqlite-writer``: the database writer; ``python``: the event loop). ``--profile FILE``
runs the collector under cProfile.

Figure: samples committed per second (counted from the collector's acks, which come only after the
commit, and checked against the database at the end). Baseline in the same run: plain sqlite3
executemany of the same rows (decoded from the same messages) into the same schema (same
migrations, same PRAGMAs) in a fresh file, in transactions of 10,000 rows, in the order the agents
produce them. Printed: both figures and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from jobpulse.collector.store.ingest import prepare
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS, migrate
from jobpulse.collector.store.sqlite import connect
from jobpulse.proto.v1 import ingest_pb2 as pb

MEASURED = [c for c in JOB_SAMPLE_COLUMNS if not c.startswith("gpu_")]
T0 = 1_760_000_000_000
VARIANTS = 16  # distinct value sets per agent, cycled through by sequence number


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited protobuf field: tag, length, body."""
    return tag + _varint(len(body)) + body


class Encoder:
    """Pre-encoded wire bytes of one simulated agent's batches, so the load generator spends almost no
    CPU per message (the two cores are for the collector). Each batch is a real node tick: ``jobs`` job
    rows with the 13 measured metrics of a real agent (realistic, non-integer values; GPU columns NaN,
    no GPU) plus one node sample; its seq and time stamps are distinct, the values cycle through
    ``VARIANTS`` sets. Assembled by hand from protobuf-encoded parts; ``decode`` checks the result."""

    def __init__(self, agent: int, jobs: int) -> None:
        self.jobs = jobs
        rnd = random.Random(agent)
        self.variants: list[bytes] = []
        for _ in range(VARIANTS):
            j = pb.JobSamples()
            for k in range(jobs):
                j.job_id.append(str(1_000_000 + agent * jobs + k))
                j.step.append("")
            for column in JOB_SAMPLE_COLUMNS:
                values = getattr(j, column)
                if column in MEASURED:
                    values.extend(rnd.uniform(0, 1e9) * rnd.random() for _ in range(jobs))
                else:
                    values.extend([math.nan] * jobs)
            self.variants.append(j.SerializeToString())  # no time_ms: added per tick
        self.node = pb.NodeSample(cpu_percent=50.5, mem_used_bytes=1.5e11, mem_total_bytes=2.5e11,
                                  load1=3.5, load5=3.2, load15=3.0).SerializeToString()  # fmt: skip

    def batch(self, seq: int) -> bytes:
        """One serialized ``Batch``: seq, the jobs with this tick's time stamps, the node sample."""
        t = _varint(T0 + seq * 1000)
        times = _field(b"\x1a", t * self.jobs)  # JobSamples.time_ms, packed
        jobs = _field(b"\x12", self.variants[seq % VARIANTS] + times)  # Batch.jobs
        node = _field(b"\x1a", b"\x08" + t + self.node)  # Batch.node, with NodeSample.time_ms
        return b"\x08" + _varint(seq) + jobs + node

    def message(self, first: int, count: int) -> bytes:
        """A serialized ``AgentMessage``: one ``batch``, or ``count`` consecutive ones as ``batches``."""
        if count == 1:
            return _field(b"\x12", self.batch(first))
        body = b"".join(_field(b"\x0a", self.batch(seq)) for seq in range(first, first + count))
        return _field(b"\xc2\x02", body)  # AgentMessage.batches = 40


def decode(message: bytes) -> list[pb.Batch]:
    parsed = pb.AgentMessage.FromString(message)
    return [parsed.batch] if parsed.WhichOneof("body") == "batch" else list(parsed.batches.batches)


class SimAgent:
    def __init__(self, index: int, jobs: int, window: int, bundle: int) -> None:
        self.index, self.window, self.bundle = index, window, bundle
        self.encoder = Encoder(index, jobs)
        self.acked = 0
        self._acks = asyncio.Event()

    async def _requests(self, stop: asyncio.Event) -> AsyncIterator[bytes]:
        hello = pb.Hello(node=f"sim{self.index:04d}", cluster="bench", stream_id=f"s{self.index}")
        yield pb.AgentMessage(hello=hello).SerializeToString()
        seq = 0
        while not stop.is_set():
            room = self.window - (seq - self.acked)
            if room <= 0:
                self._acks.clear()
                await self._acks.wait()
                continue
            # bundle 1: one tick per message; >1: like the real agent replaying a backlog
            n = min(self.bundle, room)
            yield self.encoder.message(seq + 1, n)
            seq += n

    async def run(self, target: str, stop: asyncio.Event) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            stream = channel.stream_stream(
                "/jobpulse.v1.Ingest/Stream",
                request_serializer=None,  # the requests are bytes already
                response_deserializer=pb.CollectorMessage.FromString,
            )
            call = stream(self._requests(stop))
            async for message in call:
                if message.WhichOneof("body") == "ack":
                    self.acked = max(self.acked, message.ack.seq)
                    self._acks.set()
                if stop.is_set() and message.ack.seq:
                    break
            call.cancel()


def _stat_cpu(stat: Path) -> float:
    """user+system CPU seconds from a /proc .../stat file (a process's or a thread's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user+system CPU of a process, from /proc: who got the cores on a shared machine."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB: what the staged groups cost."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """(name, user+system CPU seconds) of each thread of a process (the collector names its writer)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = ((task / "comm").read_text().strip(), _stat_cpu(task / "stat"))
        except OSError:  # the thread ended meanwhile
            continue
    return out


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
    start_c, start_d, start_t0 = cpu_seconds(pid), cpu_seconds(os.getpid()), thread_cpu(pid)
    await asyncio.sleep(duration)
    end_b, end_t = sum(s.acked for s in sims), time.perf_counter()
    cpu["collector"] = (cpu_seconds(pid) - start_c) / (end_t - start_t)
    threads = thread_cpu(pid)
    for tid, (name, seconds) in threads.items():
        cpu[f"thread {tid} {name}"] = (seconds - start_t0.get(tid, (name, 0.0))[1]) / (end_t - start_t)
    cpu["driver"] = (cpu_seconds(os.getpid()) - start_d) / (end_t - start_t)
    cpu["peak_rss_mb"] = peak_rss_mb(pid)
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
    rows: list[tuple[object, ...]] = []
    seq = 0
    encoders = [Encoder(a, jobs) for a in range(agents)]
    while len(rows) < rows_target:
        seq += 1
        for a, encoder in enumerate(encoders):
            (batch,) = decode(encoder.message(seq, 1))
            rows.extend(prepare(f"sim{a:04d}", "", "bench", batch).job_rows)  # the collector's rows
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
    parser.add_argument("--window", type=int, default=64, help="batches in flight per agent (agent: 64)")
    parser.add_argument(
        "--bundle",
        type=int,
        default=64,
        help="batches per message, at most (an agent with a backlog: as many as its window has room"
        " for; 1: one tick each)",
    )
    parser.add_argument("--profile", help="run the collector under cProfile, write its stats here")
    parser.add_argument("--warmup", type=float, default=3.0)
    # Acks come per group commit (~0.7 s each at full load): a short window counts whole groups and
    # moves in steps of ~64 k samples/s at 10 s; 30 s keeps that step under 25 k.
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    per_row = len(MEASURED)
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="jobpulse-bench-") as tmp:
        state = Path(tmp) / "collector"
        state.mkdir()
        ready = state / "ready.json"
        log = open(state / "collector.log", "wb")  # noqa: SIM115 - lives as long as the collector
        collector = subprocess.Popen(
            [sys.executable, *(["-m", "cProfile", "-o", args.profile] if args.profile else []),
             "-m", "jobpulse.collector.cli", "serve", "--state-dir", str(state),
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
            # SIGINT under --profile: uvicorn re-raises the signal after its shutdown; KeyboardInterrupt
            # still lets cProfile write its stats, the default SIGTERM action would not.
            collector.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
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
        f"cpu in the measured window: collector {cpu['collector']:.0%} of a core, load generator {cpu['driver']:.0%}; "
        f"collector CPU per committed sample {cpu['collector'] / ingest_samples * 1e9:,.0f} ns "
        f"(= {ingest_samples / cpu['collector']:,.0f} samples per collector CPU-second)"
    )
    busy = sorted(((v, k) for k, v in cpu.items() if k.startswith("thread ")), reverse=True)
    print("collector threads: " + ", ".join(f"{k.split(' ', 2)[2]} {v:.0%}" for v, k in busy if v >= 0.01))
    print(f"collector peak RSS: {cpu['peak_rss_mb']:.0f} MB")
    print(f"collector: {batches_s:,.0f} batches/s = {batches_s * args.jobs:,.0f} job rows/s = "
          f"{ingest_samples:,.0f} samples/s committed ({rows:,} rows checked in the database)")  # fmt: skip
    print(f"baseline sqlite3 executemany: {base_rows:,.0f} rows/s = {base_samples:,.0f} samples/s")
    print(
        f"ratio collector/baseline: {ingest_samples / base_samples:.2f} (goal >= 0.5; goal >= 1,000,000 samples/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
