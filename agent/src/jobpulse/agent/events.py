"""Job start/stop handoff from prolog/epilog/exec to the running agent over a unix socket.

One JSON object per line each way. Only root (or the agent's own user) may
talk to the socket: the peer's credentials are checked with SO_PEERCRED, so a
user logged in on the node cannot forge or end a job. When the agent does not
answer, the event is written to the events directory and picked up later.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio costs ~50 ms to import; the prolog/epilog never need it
    import asyncio

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` (mode 0600, in a 0700 directory) and hand each request to ``handler``."""
    import asyncio

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists() or path.is_symlink():
        path.unlink()
    allowed = {0, os.getuid()}

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = peer_uid(sock)
            if uid not in allowed:
                log.warning("refused event from uid %d on %s", uid, path)
                writer.write(b'{"ok": false, "error": "permission denied"}\n')
                return
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                writer.write(json.dumps({"ok": False, "error": f"bad request: {exc}"}).encode() + b"\n")
                return
            reply = await handler(request)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("event client went away: %s", exc)
        finally:
            writer.close()

    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server


def send(path: Path, request: dict[str, Any], timeout: float = 1.5) -> dict[str, Any]:
    """Blocking client used by prolog/epilog/exec; raises OSError/TimeoutError on any trouble."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        chunks = b""
        while not chunks.endswith(b"\n"):
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks += chunk
    reply = json.loads(chunks or b"{}")
    if not isinstance(reply, dict):
        raise OSError("agent sent a malformed reply")
    return reply


def drop(events_dir: Path, request: dict[str, Any]) -> Path:
    """Write an event for the agent to pick up later (atomic rename, root-only directory)."""
    events_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.geteuid() == 0:
        os.chmod(events_dir, 0o700)  # a pre-existing, looser directory is tightened
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
    tmp = events_dir / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "w") as handle:
        json.dump(request, handle)
        handle.flush()
        os.fsync(handle.fileno())
    final = events_dir / name
    os.rename(tmp, final)
    return final


def deliver(socket_path: Path, events_dir: Path, request: dict[str, Any], timeout: float = 1.5) -> str:
    """Hand an event to the agent, or spool it; returns 'sent' or 'spooled'. Never raises."""
    try:
        reply = send(socket_path, request, timeout=timeout)
        if reply.get("ok"):
            return "sent"
        log.warning("agent refused event: %s", reply.get("error"))
    except (OSError, TimeoutError, ValueError) as exc:
        log.warning("agent at %s not answering (%s); spooling event", socket_path, exc)
    try:
        drop(events_dir, request)
        return "spooled"
    except OSError as exc:
        log.error("could not spool event to %s: %s", events_dir, exc)
        return "lost"


def pending(events_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Spooled events, oldest first; unreadable files are skipped (and left for inspection)."""
    result = []
    try:
        names = sorted(p for p in events_dir.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    for path in names:
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                result.append((path, data))
        except (OSError, ValueError) as exc:
            log.error("skipping unreadable spooled event %s: %s", path, exc)
    return result
