"""WS /api/live/{id}: each new sample of a job as the collector commits it; closed when the job ends.

Admins and the job's owner only. Authenticate with the session cookie, a bearer header (scripts), or
``?token=`` with a ticket from POST /api/auth/ws-ticket (browsers cannot set headers on a WebSocket).
Messages are JSON: ``{"type": "hello", "job", "running"}`` first, then ``{"type": "sample", "job",
"node", "ts" (s), "values": {metric GUID: value or null}, "published_ms"}`` per sample, and finally
``{"type": "end", ...}`` before a normal close (1000) when the job stops.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.domain.errors import DomainError
from jobpulse.collector.live import LiveFeed
from jobpulse.collector.services.access import readable_job
from jobpulse.collector.services.events import JobEnded, JobRow
from litestar import WebSocket, websocket
from litestar.channels import Subscriber
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

WS_NOT_FOUND = 4404  # application close code: no such job (or not yours)
_END_PREFIX = b'{"type":"end"'


class JobMonFrames:
    """This route's frames, made by the live feed from the bus's events (once per job and message)."""

    def sample(self, node: str, row: JobRow, published_ms: float) -> bytes:
        return msgspec.json.encode(
            {
                "type": "sample",
                "job": row.job_id,
                "node": node,
                "published_ms": published_ms,
                "ts": row.ts,
                "values": row.values,
            }
        )

    def end(self, event: JobEnded, published_ms: float) -> bytes:
        return msgspec.json.encode(
            {
                "type": "end",
                "job": event.job_id,
                "node": event.node,
                "state": event.state or "COMPLETED",
                "published_ms": published_ms,
            }
        )


async def _pump(socket: WebSocket[Any, Any, Any], subscriber: Subscriber) -> None:
    """Forward the job's messages until its end message."""
    async for message in subscriber.iter_events():
        await socket.send_text(message.decode())
        if message.startswith(_END_PREFIX):
            return


async def _until_client_leaves(socket: WebSocket[Any, Any, Any]) -> None:
    """Returns when the client disconnects, so a quiet job does not keep a dead subscription."""
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except WebSocketDisconnect:
        return


@websocket("/api/live/{job_id:int}", guards=[requires(Role.USER)], name="live")
async def live(socket: WebSocket[Any, Any, Any], job_id: FromPath[int]) -> None:
    store = socket.app.state.store  # JobStore.get_job (the JobService will hold it)
    feed: LiveFeed = socket.app.state.live
    try:
        row = readable_job(
            principal_of(socket), await store.get_job(job_id) if 0 <= job_id < 2**63 else None, job_id
        )
    except Exception as exc:
        reason = exc.message if isinstance(exc, DomainError) else str(getattr(exc, "detail", "not found"))
        await socket.accept()  # accepted first so that the client sees the reason, not a bare 403
        await socket.close(code=WS_NOT_FOUND, reason=reason[:120])
        return
    await socket.accept()
    async with feed.subscribe(job_id) as subscriber:  # counted: LiveFeed skips jobs nobody watches
        # subscribed before reading the state: a STOP committed in between still reaches us
        current = await store.get_job(job_id)
        running = bool(current and current["run_id"] == row["run_id"] and current["is_running"])
        await socket.send_text(
            msgspec.json.encode({"type": "hello", "job": job_id, "running": running}).decode()
        )
        if not running:
            await socket.send_text(msgspec.json.encode({"type": "end", "job": job_id}).decode())
            await socket.close(code=1000)
            return
        pump = asyncio.create_task(_pump(socket, subscriber))
        watch = asyncio.create_task(_until_client_leaves(socket))
        try:
            done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
        if watch in done:
            return
    await socket.close(code=1000)
