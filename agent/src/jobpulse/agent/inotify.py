"""inotify(7) through libc, for the agent's cgroup watches (oomwatch.py on v1, jobend_v2.py on v2), and
the wait on their descriptors (``readable``).

Why not a library: the agent needs three calls and the event layout, on every Linux it runs on, without
a compiled dependency on compute nodes; ctypes is in the standard library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
from collections.abc import Iterable

IN_CREATE, IN_DELETE, IN_IGNORED, IN_ONLYDIR = 0x100, 0x200, 0x8000, 0x01000000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


def open_inotify() -> tuple[ctypes.CDLL, int] | None:
    """libc and a new non-blocking inotify descriptor, or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
    except (OSError, AttributeError):
        return None
    return (libc, fd) if fd >= 0 else None


def read_events(fd: int) -> list[tuple[int, int, str]]:
    """The events waiting on ``fd`` as (watch descriptor, mask, name); none when nothing is waiting."""
    try:
        data = os.read(fd, 65536)
    except OSError:
        return []
    events = []
    offset = 0
    while offset + EVENT.size <= len(data):
        wd, mask, _cookie, length = EVENT.unpack_from(data, offset)
        name = data[offset + EVENT.size : offset + EVENT.size + length].rstrip(b"\0").decode(errors="replace")
        offset += EVENT.size + length
        events.append((wd, mask, name))
    return events


def read_file(path: str) -> bytes | None:
    """A cgroup file's content; None when it (or its cgroup) is gone."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def readable(fds: Iterable[int], timeout: float) -> list[int]:
    """The descriptors of ``fds`` ready to read within ``timeout`` seconds.

    poll(2), not select(2): select cannot wait on a descriptor numbered 1024 or more (Python raises
    ValueError), and the v1 OOM watch holds two per job, so an agent on a node running a few hundred jobs
    reaches that and its watcher stopped seeing anything (found as a test that failed only late in the
    whole suite, when the test process held that many descriptors).

    Raises:
        OSError: EBADF, one of ``fds`` was closed meanwhile (the caller takes its list again).
    """
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    ready = []
    for fd, event in poller.poll(timeout * 1000):
        if event & select.POLLNVAL:
            raise OSError(errno.EBADF, "descriptor closed while waiting", str(fd))
        ready.append(fd)
    return ready
