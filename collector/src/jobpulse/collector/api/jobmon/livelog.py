"""``WS /api/admin/livelog``: the buffered log lines on connect, then each new line as it is logged.

Lines are text frames, one log line each (``<time> <LEVEL> <logger>: <message>``
and a newline: JobMon's admin page concatenates the frames as they come). The socket waits on the buffer's queue
(fed by the logging handler), so a line reaches admins as soon as it is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jobpulse.collector.auth.guards import requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.logbuffer import LogBuffer
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect


@websocket(
    "/api/admin/livelog",
    guards=[requires(Role.ADMIN)],
    name="livelog",
    summary="Recent collector log lines, then new ones as they are logged (admin)",
)
async def livelog(socket: WebSocket[Any, Any, Any]) -> None:
    buffer: LogBuffer = socket.app.state.logbuffer
    await socket.accept()
    backlog, queue = buffer.subscribe()
    closed = asyncio.create_task(_until_closed(socket))
    try:
        for line in backlog:
            await socket.send_text(line + "\n")
        while not closed.done():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            await socket.send_text(getter.result() + "\n")
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the admin went away while we were sending
    finally:
        buffer.unsubscribe(queue)
        closed.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await closed


async def _until_closed(socket: WebSocket[Any, Any, Any]) -> None:
    """Reads (and ignores) client frames so a disconnect is noticed even when no line is logged."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")
