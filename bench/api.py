"""API benchmark: GET /api/jobs and GET /api/job/{id} under 50 concurrent clients, and 500 live
WebSocket clients of one job, against a real collector process over loopback.

Usage: scripts/dev.sh run python bench/api.py [--duration 10] [--clients 50] [--ws-clients 500]

Figures: requests/s and p95 latency per endpoint with the ratio to GET /api/ping measured the same way
in the same run (the cost of the framework, auth and loopback alone); for WebSockets the p95 delay from
the collector committing a sample to a client receiving it, with 500 clients and, as the baseline, 1.
The database is seeded first with realistic content: 5000 jobs of 100 users, the benchmarked job on
4 nodes for 24 h at a 10 s tick (34 560 sample rows), plus tags.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx
import websockets
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc

BIG_JOB = 4242
LIVE_JOB = 777777
NODES = ("n001", "n002", "n003", "n004")


def seed(path: Path) -> None:
    store = SqliteStore(path)
    store.open()
    db = store.writer
    now = int(time.time())
    rnd = random.Random(1)
    db.execute("BEGIN")
    jobs = []
    for i in range(5000):
        start = now - 30 * 86400 + i * 500
        stop = None if i % 50 == 0 else start + rnd.randint(60, 86400)
        nodes = [f"n{rnd.randint(1, 200):03d}" for _ in range(rnd.choice((1, 1, 2, 4)))]
        jobs.append((10_000 + i, f"user{i % 100:03d}", ("cpu", "gpu", "bigmem")[i % 3], start, stop, nodes))
    jobs.append((BIG_JOB, "user000", "cpu", now - 86400, now, list(NODES)))
    jobs.append((LIVE_JOB, "user000", "cpu", now, None, ["live01"]))
    for job_id, user, partition, start, stop, nodes in jobs:
        db.execute(
            """INSERT INTO jobs (job_id, cluster, user_name, user_id, group_name, account, partition, job_name,
                 num_nodes, num_tasks, cpus, gpus_per_node, nodes, nodelist, start_time, stop_time, is_running,
                 state, exit_code, source, updated)
               VALUES (?, 'bench', ?, 1000, 'grp', 'proj', ?, 'sim', ?, ?, 32, 0, ?, ?, ?, ?, ?, ?, 0, 'bench', ?)""",
            (
                job_id,
                user,
                partition,
                len(nodes),
                32 * len(nodes),
                json.dumps(nodes),
                ",".join(nodes),
                start,
                stop,
                int(stop is None),
                "RUNNING" if stop is None else "COMPLETED",
                time.time(),
            ),
        )
    cols = ", ".join(JOB_SAMPLE_COLUMNS)
    marks = ", ".join("?" for _ in JOB_SAMPLE_COLUMNS)
    rows = []
    for node in NODES:
        for i in range(8640):
            values = [rnd.random() * 32 if c != "mem_limit_bytes" else math.inf for c in JOB_SAMPLE_COLUMNS]
            rows.append((BIG_JOB, node, "", (now - 86400 + i * 10) * 1000, *values))
    db.executemany(
        f"INSERT INTO job_samples (job_id, node, step, ts, {cols}) VALUES (?, ?, ?, ?, {marks})", rows
    )
    # the per (job, node, step) ledger ingest keeps: the job service reads a run's nodes from it, so without
    # it GET /api/job/{BIG_JOB} answered an empty MetricData and the figures below measured nothing
    db.executemany(
        "INSERT INTO job_series (job_id, node, step, raw_first_ms, last_ms) VALUES (?, ?, '', ?, ?)",
        [(BIG_JOB, node, (now - 86400) * 1000, (now - 86400 + 8639 * 10) * 1000) for node in NODES],
    )
    # every finished job has its summary (the job list's radar chart reads its per-metric figures)
    finished = db.execute("SELECT run_id, nodes FROM jobs WHERE is_running = 0").fetchall()
    db.executemany(
        "INSERT INTO job_summaries (run_id, computed, summary) VALUES (?, ?, ?)",
        [(run_id, now, json.dumps(_summary(run_id, json.loads(nodes), rnd))) for run_id, nodes in finished],
    )
    db.execute("COMMIT")
    store.close()


def _summary(run_id: int, nodes: list[str], rnd: random.Random) -> dict[str, object]:
    """A stored summary of realistic size and shape (summary.JobSummary.to_dict)."""
    figures = {"cpu_seconds": rnd.random() * 1e6, "mem_peak_bytes": rnd.random() * 1e11, "samples": 8640}
    return {
        "run_id": run_id,
        "cpu_efficiency": rnd.random(),
        "nodes": [{"node": n, **figures} for n in nodes],
        "findings": [],
        "metrics": {
            c: {"mean": rnd.random() * 32, "max": rnd.random() * 64, "limit": 32.0}
            for c in JOB_SAMPLE_COLUMNS
        },
    }


def start_collector(state: Path, password: str) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    ready = state / "ready.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobpulse.collector.cli",
            "serve",
            "--state-dir",
            str(state),
            "--http-port",
            "0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--ready-file",
            str(ready),
        ],
        env={
            **os.environ,
            "JOBPULSE_ADMIN_PASSWORD": password,
            "JOBPULSE_LOG_LEVEL": "WARNING",
            # a load test measures throughput, so the per-client rate limits are off here
            "JOBPULSE_HTTP_RATE_LIMIT_PER_MINUTE": "0",
            "JOBPULSE_HTTP_LOGIN_RATE_LIMIT_PER_MINUTE": "0",
        },
        stdout=(state / "collector.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"collector did not start: {(state / 'collector.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, json.loads(ready.read_text())


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan")


async def http_load(
    base: str, path: str, headers: dict[str, str], clients: int, duration: float
) -> tuple[float, float]:
    """(requests/s, p95 latency in ms) of ``clients`` concurrent loops over GET ``path``."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:
        await client.get(path)  # warm up
        end = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    response = await client.get(path)
                except httpx.TransportError:  # counted and reported, never silently dropped
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"GET {path}: {response.status_code} {response.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    if errors:
        print(f"  ({errors} transport errors on {path})")
    return len(latencies) / elapsed, p95(latencies)


async def ws_delays(
    http_port: int, grpc_port: int, token: str, clients: int, batches: int
) -> tuple[float, int]:
    """(p95 commit-to-receive delay in ms over all clients and samples, messages received)."""
    url = f"ws://127.0.0.1:{http_port}/api/live/{LIVE_JOB}/raw"  # jobpulse's frames carry published_ms
    sockets = []
    for i in range(0, clients, 50):  # connect in waves: the listen backlog is finite
        sockets += await asyncio.gather(
            *(
                websockets.connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {token}"},
                    open_timeout=60,
                    max_queue=None,
                )
                for _ in range(min(50, clients - i))
            )
        )
    for ws in sockets:
        assert json.loads(await ws.recv())["type"] == "hello"
    delays: list[float] = []

    async def reader(ws: websockets.ClientConnection) -> None:
        for _ in range(batches):
            message = json.loads(await ws.recv())
            delays.append(time.time() * 1000 - message["published_ms"])

    readers = [asyncio.create_task(reader(ws)) for ws in sockets]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        call = pb_grpc.IngestStub(channel).Stream()
        await call.write(
            pb.AgentMessage(hello=pb.Hello(node="live01", stream_id=secrets.token_hex(8), cpus=8))
        )
        await call.read()
        for seq in range(1, batches + 1):
            batch = pb.Batch(seq=seq)
            batch.jobs.job_id.append(str(LIVE_JOB))
            batch.jobs.step.append("")
            batch.jobs.time_ms.append(int(time.time() * 1000))
            for column in JOB_SAMPLE_COLUMNS:
                getattr(batch.jobs, column).append(float(seq))
            await call.write(pb.AgentMessage(batch=batch))
            await call.read()
            await asyncio.sleep(0.5)
        await call.done_writing()
    await asyncio.wait_for(asyncio.gather(*readers), 120)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return p95(delays), len(delays)


async def main_async(args: argparse.Namespace, ports: dict[str, int], password: str) -> None:
    base = f"http://127.0.0.1:{ports['http_port']}"
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/api/login", json={"Username": "admin", "Password": password})
        token = response.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    ping_rps, ping_p95 = await http_load(base, "/api/ping", headers, args.clients, args.duration)
    print(f"baseline GET /api/ping: {ping_rps:.0f} req/s, p95 {ping_p95:.1f} ms ({args.clients} clients)")
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        cold = []
        for interval in (30, 60, 120):  # each a new cache key: computed from the samples
            t0 = time.perf_counter()
            (await client.get(f"/api/job/{BIG_JOB}?sampleInterval={interval}")).raise_for_status()
            cold.append((time.perf_counter() - t0) * 1000)
    print(f"GET /api/job/{BIG_JOB} uncached, one client: {sorted(cold)[1]:.0f} ms (median of 3)")
    for label, path in (
        ("GET /api/jobs (100 of 5002, admin)", "/api/jobs?limit=100"),
        (
            "GET /api/jobs filtered (Partition, Time range)",
            f"/api/jobs?Partition=gpu&Time={int(time.time()) - 10 * 86400},",
        ),
        (f"GET /api/job/{BIG_JOB} (4 nodes x 24 h, 16 metrics; cached series)", f"/api/job/{BIG_JOB}"),
    ):
        rps, lat = await http_load(base, path, headers, args.clients, args.duration)
        print(
            f"{label}: {rps:.0f} req/s ({rps / ping_rps:.3f} x ping), p95 {lat:.1f} ms ({lat / ping_p95:.1f} x ping)"
        )
    base_delay, n1 = await ws_delays(ports["http_port"], ports["grpc_port"], token, 1, args.batches)
    print(f"baseline live delay, 1 client: p95 {base_delay:.1f} ms over {n1} messages")
    delay, n = await ws_delays(ports["http_port"], ports["grpc_port"], token, args.ws_clients, args.batches)
    print(
        f"live delay, {args.ws_clients} clients: p95 {delay:.1f} ms over {n} messages "
        f"({delay / base_delay:.1f} x 1 client)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per HTTP endpoint")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--ws-clients", type=int, default=500)
    parser.add_argument("--batches", type=int, default=20, help="live samples sent per WebSocket run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobpulse-bench-") as tmp:
        state = Path(tmp)
        t0 = time.perf_counter()
        seed(state / "jobpulse.db")
        print(f"seeded in {time.perf_counter() - t0:.1f} s; cpus: {os.cpu_count()}, load: {os.getloadavg()}")
        password = secrets.token_urlsafe(12)
        proc, ports = start_collector(state, password)
        try:
            asyncio.run(main_async(args, ports, password))
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
