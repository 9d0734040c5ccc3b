"""The log ring buffer and WS /api/admin/livelog through Litestar's test client."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading

import pytest
from conftest import ADMIN_PASSWORD
from jobpulse.collector.app import create_app
from jobpulse.collector.logbuffer import LogBuffer
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

log = logging.getLogger("jobpulse.test.livelog")


def _receive_until(ws: object, marker: str, limit: int = 200) -> list[str]:
    seen = []
    for _ in range(limit):
        line = ws.receive_text(timeout=5)  # type: ignore[attr-defined]
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} not received; got {seen[-5:]}")


def test_buffer_is_bounded_and_keeps_the_newest() -> None:
    buffer = LogBuffer(capacity=3)
    logger = logging.getLogger("jobpulse.test.ring")
    logger.addHandler(buffer)
    try:
        for i in range(10):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(buffer)
    lines = buffer.recent()
    assert len(lines) == 3
    assert [line.rsplit(" ", 1)[-1] for line in lines] == ["7", "8", "9"]
    assert "WARNING jobpulse.test.ring: line 9" in lines[-1]


async def test_subscribers_get_lines_logged_from_other_threads() -> None:
    buffer = LogBuffer(capacity=10)
    logger = logging.getLogger("jobpulse.test.threads")
    logger.addHandler(buffer)
    try:
        backlog, queue = buffer.subscribe()
        assert backlog == []
        thread = threading.Thread(target=logger.error, args=("from a thread",))
        thread.start()
        thread.join()
        line = await asyncio.wait_for(queue.get(), 2)
        assert "from a thread" in line
        buffer.unsubscribe(queue)
        assert buffer.subscriber_count == 0
    finally:
        logger.removeHandler(buffer)


def test_livelog_backlog_then_live_lines(fx_store: SqliteStore, fx_settings: CollectorSettings) -> None:
    before, after = secrets.token_hex(6), secrets.token_hex(6)
    with TestClient(app=create_app(fx_store, fx_settings)) as client:
        token = client.post("/api/login", json={"Username": "admin", "Password": ADMIN_PASSWORD}).json()[
            "token"
        ]
        client.cookies.clear()
        log.warning("logged before connecting %s", before)
        with client.websocket_connect(
            "/api/admin/livelog", headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            assert any(before in line for line in _receive_until(ws, before))
            log.warning("logged while connected %s", after)
            assert after in _receive_until(ws, after)[-1]


def test_livelog_refuses_non_admins(fx_store: SqliteStore, fx_settings: CollectorSettings) -> None:
    with TestClient(app=create_app(fx_store, fx_settings)) as client:
        token = client.post("/api/login", json={"Username": "alice", "Password": "alice-password"}).json()[
            "token"
        ]
        client.cookies.clear()
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/api/admin/livelog") as ws:
            ws.receive_text(timeout=5)
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect(
                "/api/admin/livelog", headers={"Authorization": f"Bearer {token}"}
            ) as ws,
        ):
            ws.receive_text(timeout=5)
