"""The live routes of a running job: JobMon's protocol on WS /api/live/{id}, jobpulse's on /raw.

Both: admins and the job's owner only (another user's job closes as a missing one does, 4404 with the
reason, so ids cannot be probed). Authenticate with the session cookie (what JobMon's page sends: it
opens the socket on the same origin), a bearer header (scripts), or ``?token=`` with a ticket from POST
/api/auth/ws-ticket (browsers cannot set headers on a WebSocket). Frames are encoded by the route's
live feed (collector/live.py) from the event bus's committed batches, once per job and agent message,
never on the ingest path; a finished job's socket is closed (1000) at once, a running one's when the
job ends.

**WS /api/live/{id}** speaks JobMon's protocol (its ``router/ws.go``) as its job page uses it:

- the page sends ``{"Type": 1, "StartTime": s, "StopTime": s}`` when its user widens the time window;
  the answer is ``{"Type": 2, "MetricData": [MetricData, ...]}``: every metric of the job from
  StartTime to before StopTime at the page's interval (``[]`` when there is none; never null, which
  the page would iterate);
- as samples are committed, ``{"Type": 3, "MetricData": [...]}`` is pushed: each metric's new samples,
  ``Data`` keyed by the node that sent them (the page appends them to that node's series).

**WS /api/live/{id}/raw** sends jobpulse's own frames: ``{"type": "hello", "job", "running"}`` first,
then ``{"type": "sample", "job", "node", "ts" (s), "values": {metric column: value or null},
"published_ms"}`` per whole-job sample, and finally ``{"type": "end", ...}`` before a normal close
(1000) when the job stops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.domain.errors import DomainError
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.domain.runs import JobRun
from jobpulse.collector.live import LiveFeed
from jobpulse.collector.schemas import LiveLoadRequest, LiveMessage, MetricConfig, MetricData
from jobpulse.collector.services.events import JobEnded, JobRow
from jobpulse.collector.services.jobs import JobService
from jobpulse.collector.services.series import points
from litestar import WebSocket, websocket
from litestar.channels import Subscriber
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

WS_NOT_FOUND = 4404  # application close code: no such job (or not yours)
LOAD_METRICS, LOAD_METRICS_RESPONSE, LATEST_METRICS = 1, 2, 3  # JobMon's WSMsg types
_RAW_END_PREFIX = b'{"type":"end"'
_JOBMON_END = b'{"Type":0}'  # the JobMon feed's end of a job: closes the socket, never sent
_load_request = msgspec.json.Decoder(LiveLoadRequest)

Send = Callable[[str], Awaitable[None]]


class JobMonFrames:
    """JobMon's Type 3 frames, made by the live feed from the bus's events (once per job and message).

    ``catalog`` is the metric catalogue the frames show (each MetricData carries its Config); the route
    refreshes it whenever a client connects.
    """

    def __init__(self) -> None:
        self.catalog: list[MetricConfig] = []

    def samples(self, node: str, job_id: int, rows: list[JobRow], published_ms: float) -> Iterable[bytes]:
        metric_data = []
        for metric in self.catalog:
            series = [(r.ts, v) for r in rows if (v := r.values.get(metric.Measurement)) is not None]
            if series:
                metric_data.append(MetricData(Config=metric, Data={node: points(node, series)}))
        if metric_data:
            yield msgspec.json.encode(LiveMessage(Type=LATEST_METRICS, MetricData=metric_data))

    def end(self, event: JobEnded, published_ms: float) -> bytes:
        return _JOBMON_END


class JobpulseFrames:
    """jobpulse's own frames (the /raw route): one per whole-job sample, then the end."""

    def samples(self, node: str, job_id: int, rows: list[JobRow], published_ms: float) -> Iterable[bytes]:
        for row in rows:
            yield msgspec.json.encode(
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


async def _until_client_leaves(socket: WebSocket[Any, Any, Any]) -> None:
    """Returns when the client disconnects, so a quiet job does not keep a dead subscription."""
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except WebSocketDisconnect:
        return


async def _readable(
    socket: WebSocket[Any, Any, Any], jobs: JobService, job_id: int
) -> tuple[Principal, JobRun] | None:
    """(the caller, the run) when the caller may watch job ``job_id``; otherwise the socket is accepted
    (so that the client sees the reason, not a bare 403) and closed with 4404, and None."""
    principal = principal_of(socket)
    try:
        return principal, await jobs.get_job(principal, job_id)
    except Exception as exc:
        reason = exc.message if isinstance(exc, DomainError) else str(getattr(exc, "detail", "not found"))
        await socket.accept()
        await socket.close(code=WS_NOT_FOUND, reason=reason[:120])
        return None


async def _still_running(jobs: JobService, principal: Principal, job_id: int, row: JobRun) -> bool:
    """Whether the run is still running, read after subscribing: a STOP committed in between still
    reaches the subscriber."""
    try:
        current = await jobs.get_job(principal, job_id)
    except DomainError:
        return False
    return current.run_id == row.run_id and current.is_running


async def _until_first_done(*tasks: asyncio.Task[None]) -> set[asyncio.Task[None]]:
    try:
        done, _ = await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return done


# -- JobMon's protocol -------------------------------------------------------------------------------
async def _push(subscriber: Subscriber, send: Send) -> None:
    """Forward the job's Type 3 frames until the job ends."""
    async for message in subscriber.iter_events():
        if message == _JOBMON_END:
            return
        await send(message.decode())


async def _answer_loads(
    socket: WebSocket[Any, Any, Any], send: Send, jobs: JobService, principal: Principal, job_id: int
) -> None:
    """Answer the page's load requests (Type 1) with Type 2 until the client leaves; other messages
    are ignored, as JobMon does."""
    while True:
        try:
            message = await socket.receive()
        except WebSocketDisconnect:
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text") or message.get("bytes") or b""
        try:
            request = _load_request.decode(text if isinstance(text, str | bytes) else b"")
        except msgspec.DecodeError:
            continue
        if request.Type != LOAD_METRICS:
            continue
        stop = request.StopTime or time.time()
        try:
            window = await jobs.live_window(principal, job_id, request.StartTime, stop)
        except DomainError:
            window = []
        answer = LiveMessage(Type=LOAD_METRICS_RESPONSE, MetricData=window)
        await send(msgspec.json.encode(answer).decode())


@websocket("/api/live/{job_id:int}", guards=[requires(Role.USER)], name="live")
async def live(socket: WebSocket[Any, Any, Any], job_id: FromPath[int]) -> None:
    jobs: JobService = socket.app.state.jobs
    feed: LiveFeed = socket.app.state.live
    found = await _readable(socket, jobs, job_id)
    if found is None:
        return
    principal, row = found
    await socket.accept()
    frames = feed.frames
    if isinstance(frames, JobMonFrames):
        frames.catalog = await jobs.metric_catalog()
    lock = asyncio.Lock()  # the pushes and the answers share the socket

    async def send(text: str) -> None:
        async with lock:
            await socket.send_text(text)

    async with feed.subscribe(job_id) as subscriber:  # counted: LiveFeed skips jobs nobody watches
        if await _still_running(jobs, principal, job_id, row):
            push = asyncio.create_task(_push(subscriber, send))
            answers = asyncio.create_task(_answer_loads(socket, send, jobs, principal, job_id))
            if push not in await _until_first_done(push, answers):
                return  # the client left
    await socket.close(code=1000)


# -- jobpulse's frames ---------------------------------------------------------------------------------
async def _pump(socket: WebSocket[Any, Any, Any], subscriber: Subscriber) -> None:
    """Forward the job's messages until its end message."""
    async for message in subscriber.iter_events():
        await socket.send_text(message.decode())
        if message.startswith(_RAW_END_PREFIX):
            return


@websocket("/api/live/{job_id:int}/raw", guards=[requires(Role.USER)], name="live_raw")
async def live_raw(socket: WebSocket[Any, Any, Any], job_id: FromPath[int]) -> None:
    jobs: JobService = socket.app.state.jobs
    feed: LiveFeed = socket.app.state.live_raw
    found = await _readable(socket, jobs, job_id)
    if found is None:
        return
    principal, row = found
    await socket.accept()
    async with feed.subscribe(job_id) as subscriber:
        running = await _still_running(jobs, principal, job_id, row)
        await socket.send_text(
            msgspec.json.encode({"type": "hello", "job": job_id, "running": running}).decode()
        )
        if not running:
            await socket.send_text(msgspec.json.encode({"type": "end", "job": job_id}).decode())
            await socket.close(code=1000)
            return
        pump = asyncio.create_task(_pump(socket, subscriber))
        watch = asyncio.create_task(_until_client_leaves(socket))
        if watch in await _until_first_done(pump, watch):
            return
    await socket.close(code=1000)
