"""WS /api/live/{id}/raw (jobpulse's frames) against a real collector and a real agent: each committed
sample arrives live. JobMon's protocol on /api/live/{id} is tested in test_jobmon_pages.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
from support import Collector, running, start_agent, start_collector, stop, unique_job_id, wait_for

WORK = "import time\nend = time.time() + 4\nwhile time.time() < end:\n    sum(range(10000))\n"


@pytest.fixture
def collector(tmp_path: Path) -> Collector:
    c = start_collector(tmp_path / "collector")
    yield c
    stop(c.proc)


def _ticket(collector: Collector) -> str:
    token = collector.login()
    response = httpx.post(
        collector.url + "/api/auth/ws-ticket", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    response.raise_for_status()
    ticket: str = response.json()["token"]
    return ticket


async def _receive_all(url: str) -> list[tuple[float, dict]]:
    received = []
    async with websockets.connect(url, open_timeout=10) as ws:
        async for raw in ws:
            received.append((time.time() * 1000, json.loads(raw)))
        assert ws.close_code == 1000
    return received


def test_live_samples_arrive_within_a_second_and_the_socket_ends_with_the_job(
    tmp_path: Path, collector: Collector
) -> None:
    nocgroup = tmp_path / "nocgroup"
    nocgroup.mkdir()
    agent_dir = tmp_path / "agent"
    agent = start_agent(agent_dir, collector.grpc_target, "--cgroup-root", str(nocgroup), tick=0.5)
    job = unique_job_id()
    with running(agent):
        work = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobpulse.agent.cli",
                "exec",
                "--state-dir",
                str(agent_dir),
                "--socket",
                str(agent_dir / "agent.sock"),
                "--cgroup-root",
                str(nocgroup),
                "--job-id",
                str(job),
                "--",
                sys.executable,
                "-c",
                WORK,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with running(work):
            wait_for(lambda: collector.get(f"/api/job/{job}").status_code == 200, 10, "the job to start")
            ws_url = f"ws://127.0.0.1:{collector.http_port}/api/live/{job}/raw?token={_ticket(collector)}"
            received = asyncio.run(asyncio.wait_for(_receive_all(ws_url), 30))
            assert work.wait(timeout=30) == 0, work.stderr.read() if work.stderr else ""
    kinds = [m["type"] for _, m in received]
    assert kinds[0] == "hello" and received[0][1]["running"] is True
    assert kinds[-1] == "end"
    samples = [(at, m) for at, m in received if m["type"] == "sample"]
    assert len(samples) >= 4, kinds  # ~4 s of work at a 0.5 s tick
    delays = [at - m["published_ms"] for at, m in samples]
    assert max(delays) < 1000, delays
    assert all(m["job"] == job and m["values"]["cpu_user_seconds"] is not None for _, m in samples)
    # every live sample is one the collector stored (same node and time)
    raw = collector.get(f"/api/job/{job}?raw=true").json()
    stored = {
        (node, p["_time"])
        for m in raw["MetricData"]
        if m["Config"]["GUID"] == "cpu_user_seconds"
        for node, points in m["Data"].items()
        for p in points
    }
    from jobpulse.collector.api.jobmon.jobdata import rfc3339

    live = {(m["node"], rfc3339(m["ts"])) for _, m in samples}
    assert live <= stored and len(live) == len(samples)


def test_live_refuses_without_credentials_and_for_unknown_jobs(collector: Collector) -> None:
    async def attempt(url: str) -> int | None:
        try:
            async with websockets.connect(url, open_timeout=10) as ws:
                await ws.recv()
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code
        except websockets.exceptions.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        return None

    base = f"ws://127.0.0.1:{collector.http_port}/api/live"
    for route in ("", "/raw"):
        assert asyncio.run(attempt(f"{base}/1{route}")) in (403, 4401)
        assert asyncio.run(attempt(f"{base}/1{route}?token=forged")) in (403, 4401)
        assert asyncio.run(attempt(f"{base}/987654{route}?token={_ticket(collector)}")) == 4404
