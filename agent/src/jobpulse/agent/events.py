"""Job start/stop handoff from prolog/epilog/exec to the running agent over a unix socket.

One JSON object per line each way. Only root (or the agent's own user) may
talk to the socket: the peer's credentials are checked with SO_PEERCRED, so a
user logged in on the node cannot forge or end a job. When the agent does not
answer, the event is written to the events directory and picked up later; a
spooled file the agent cannot read or handle is moved to ``events/rejected/``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobpulse.agent import aside
from jobpulse.common import validate

if TYPE_CHECKING:  # asyncio costs ~50 ms to import; the prolog/epilog never need it
    import asyncio

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024  # one request line; a hook's event is far smaller (jobmeta's limits)
MAX_EVENT_FILE_BYTES = 1024 * 1024  # a spooled event file
MAX_DEPTH = 16  # JSON nesting of a request (an event nests 3 levels)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def parse_request(data: bytes) -> dict[str, Any]:
    """One request (a JSON object) from the socket or a spooled file.

    Raises:
        ValueError: not UTF-8 JSON, nested too deeply (checked before parsing: a recursive parser
            would raise RecursionError), or not an object.
    """
    if not validate.json_depth_ok(data, MAX_DEPTH):
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    request = json.loads(data)
    if not isinstance(request, dict):
        raise ValueError("not a JSON object")
    return request


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` (mode 0600, in a 0700 directory) and hand each request to ``handler``.

    Every connection gets one answer line (``{"ok": false, "error": ...}`` for a request that is too
    long, not JSON, or that the handler failed on); nothing a client sends raises out of here.
    """
    import asyncio

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists() or path.is_symlink():
        path.unlink()
    allowed = {0, os.getuid()}

    async def answer(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = peer_uid(sock)
            if uid not in allowed:
                log.warning("refused event from uid %d on %s", uid, path)
                await answer(writer, {"ok": False, "error": "permission denied"})
                return
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=5)
            except ValueError:  # asyncio's LimitOverrunError, as readline raises it
                log.warning("refused a request longer than %d bytes on %s", MAX_REQUEST_BYTES, path)
                await answer(writer, {"ok": False, "error": f"request longer than {MAX_REQUEST_BYTES} bytes"})
                return
            try:
                request = parse_request(line)
            except ValueError as exc:
                log.warning(
                    "refused a malformed request on %s: %s", path, validate.safe_for_log(str(exc), 120)
                )
                await answer(
                    writer, {"ok": False, "error": f"bad request: {validate.safe_for_log(str(exc), 200)}"}
                )
                return
            try:
                reply = await handler(request)
            except Exception:
                log.exception("handling a request on %s failed", path)
                reply = {"ok": False, "error": "the agent failed to handle the request (see its log)"}
            await answer(writer, reply)
        except (TimeoutError, ConnectionError) as exc:
            log.debug("event client went away: %s", exc)
        except Exception:
            log.exception("event connection on %s failed", path)
        finally:
            writer.close()

    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path), limit=MAX_REQUEST_BYTES)
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
    """Spooled events, oldest first; a file that cannot be read as an event is set aside
    (``rejected/``, with the reason), never retried."""
    result = []
    try:
        names = sorted(p for p in events_dir.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    for path in names:
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):  # a FIFO would block the agent, a symlink point anywhere
                raise ValueError("not a regular file")
            if info.st_size > MAX_EVENT_FILE_BYTES:
                raise ValueError(f"larger than {MAX_EVENT_FILE_BYTES} bytes")
            result.append((path, parse_request(path.read_bytes())))
        except (OSError, ValueError) as exc:
            log.error("setting aside unreadable spooled event %s: %s", path, exc)
            aside.move(path, f"unreadable: {exc}")
    return result
