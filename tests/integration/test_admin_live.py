"""WS /api/admin/livelog against a real collector process, with a real WebSocket client."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from support import Collector, running, start_agent, start_collector, stop, wait_for


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = start_collector(tmp_path / "collector")
    yield c
    stop(c.proc)


async def _until(ws: websockets.ClientConnection, marker: str) -> str:
    while True:
        line = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(line, str)
        if marker in line:
            return line


async def test_livelog_streams_backlog_and_new_lines(collector: Collector) -> None:
    token = collector.login()
    ws_url = f"ws://127.0.0.1:{collector.http_port}/api/admin/livelog"
    # browsers cannot set headers on a WebSocket: a short-lived ticket goes in the URL
    ticket = httpx.post(
        collector.url + "/api/auth/ws-ticket", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()["token"]
    async with websockets.connect(f"{ws_url}?token={ticket}") as ws:
        start_line = await _until(ws, "jobpulse collector")  # the start-up line, from the backlog
        assert "gRPC on" in start_line
        who = f"user{secrets.token_hex(4)}"
        async with httpx.AsyncClient() as client:
            response = await client.post(
                collector.url + "/api/notify/admin", json={"Username": who, "Roles": []}
            )
            assert response.status_code == 200
        line = await _until(ws, who)
        assert "role request" in line and "WARNING" in line


async def test_livelog_refuses_anonymous_and_bad_tickets(collector: Collector) -> None:
    ws_url = f"ws://127.0.0.1:{collector.http_port}/api/admin/livelog"
    for url in (ws_url, ws_url + "?token=forged"):
        with pytest.raises((websockets.InvalidStatus, websockets.ConnectionClosed)):
            async with websockets.connect(url) as ws:
                await asyncio.wait_for(ws.recv(), 5)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_metrics_count_batches_from_a_real_agent(collector: Collector, tmp_path: Path) -> None:
    agent = start_agent(tmp_path / "agent", collector.grpc_target, tick=0.5)
    with running(agent):
        text = wait_for(
            lambda: (
                (t := collector.get("/metrics", auth=False).text)
                and _metric(t, "jobpulse_ingest_batches_total") >= 2
                and t
            ),
            30,
            "two batches counted",
        )
    assert _metric(text, 'jobpulse_ingest_samples_total{kind="node"}') >= 2
    assert _metric(text, "jobpulse_nodes") == 1


def test_http_behaviour_over_a_real_server(tmp_path: Path) -> None:
    """Rate limit, gzip and CORS as configured from the environment, through uvicorn."""
    c = start_collector(
        tmp_path / "c",
        env={
            "JOBPULSE_HTTP_LOGIN_RATE_LIMIT_PER_MINUTE": "2",
            "JOBPULSE_HTTP_CORS_ORIGINS": "https://jobs.example.org,https://other.example.org",
        },
    )
    try:
        bad = {"Username": "admin", "Password": "wrong"}
        codes = [httpx.post(c.url + "/api/login", json=bad, timeout=10).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        limited = httpx.post(c.url + "/api/login", json=bad, timeout=10)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["detail"]
        schema = httpx.get(c.url + "/api/openapi.json", headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert schema.headers["content-encoding"] == "gzip" and schema.json()["paths"]
        preflight = httpx.options(
            c.url + "/api/jobs",
            headers={"Origin": "https://other.example.org", "Access-Control-Request-Method": "GET"},
            timeout=10,
        )
        assert preflight.headers["access-control-allow-origin"] == "https://other.example.org"
    finally:
        stop(c.proc)
