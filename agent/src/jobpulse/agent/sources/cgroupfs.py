"""Parsing helpers for the kernel's cgroup file formats, shared by the v1 and v2 readers."""

from __future__ import annotations

import contextlib
import errno
import math
import os
from itertools import repeat
from pathlib import Path

# Limits and cpusets change rarely (scontrol update): ``Readers`` has every reader re-read them every
# this many ticks, and empties its shared ancestor-limit cache on the same cycle.
STATIC_EVERY = 30

NAN = math.nan
# Bytes read of each cgroup file (the largest, a v1 memory.stat, is ~1 KB); the fast path (block.py)
# reads at most as much, so both paths see the same bytes.
READ_SIZE = 65536
_GONE_ERRNOS = frozenset({errno.ENODEV, errno.ENOENT, errno.ESRCH})


def read_bytes(path: Path | str, gone: bool = False) -> bytes | None:
    """A small file's bytes (os calls, no file object), or None when it or its cgroup does not exist.

    A missing file is normal: optional controllers, or a job that ended between
    listing and reading. ``gone`` (the readers' path-by-path mode, when out of
    descriptors): a cgroup removed while its file is read raises ``CgroupGone``, the
    readers' signal that the job ended, and a file it may not open reads as absent.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in _GONE_ERRNOS or (gone and isinstance(exc, PermissionError)):
            return None
        raise
    try:
        return os.pread(fd, READ_SIZE, 0)
    except OSError as exc:
        if exc.errno not in _GONE_ERRNOS:  # ENODEV: the cgroup was removed while we read it
            raise
        if gone:
            raise CgroupGone(str(exc)) from exc
        return None
    finally:
        os.close(fd)


def read_text(path: Path | str) -> str | None:
    """File contents as text, or None when the file (or its cgroup) does not exist."""
    data = read_bytes(path)
    return None if data is None else data.decode()


def read_number(path: Path | str) -> float:
    """A single-value file ('123' or 'max') as a float; NaN if absent, +inf for 'max'."""
    return number_value(read_bytes(path))


def count_cpus(cpulist: str | None) -> float:
    """Number of CPUs in a cpuset list such as '0-3,8,10-11'; NaN if unknown."""
    if cpulist is None:
        return NAN
    cpulist = cpulist.strip()
    if not cpulist:
        return NAN
    total = 0
    for part in cpulist.split(","):
        low, _, high = part.partition("-")
        total += (int(high) - int(low) + 1) if high else 1
    return float(total)


def limit_of(directory: str, filename: str, stop: str, cache: dict[str, float]) -> float:
    """The tightest limit in ``filename`` of ``directory`` and its ancestors below ``stop``.

    NaN when the directory has no such file (the controller is not enabled);
    an ancestor without it ends the walk. The directory's own file is read
    every call, the ancestors' answers come from ``cache`` when it has them:
    every job and step below one ``uid_N`` or scope shares them, so a refresh
    reads each ancestor once rather than once per cgroup. The caller empties
    the cache as often as limits should be re-read.
    """
    own = read_number(os.path.join(directory, filename))
    if own == own:  # not NaN
        parent = os.path.dirname(directory)
        if parent != stop and parent != directory and os.path.basename(parent):
            above = cache.get(parent)
            if above is None:
                above = limit_of(parent, filename, stop, cache)
            if above == above:
                own = min(own, above)
    cache[directory] = own
    return own


# --- The hot path: files opened once per cgroup and re-read with pread. ---
#
# Opening a cgroup file costs about as much as reading it, so a job's files are
# opened when the job first appears and closed when it goes away; each tick is
# one pread per file. Parsing looks up only the keys the agent reports.


class FileSet:
    """Open descriptors for some files of one cgroup; a file that does not exist is simply absent."""

    __slots__ = ("_at", "fds", "names", "paths", "slots")

    def __init__(self, paths: dict[str, Path], keep: bool = True) -> None:
        self.names = list(paths)
        self.fds: dict[str, int] = {}
        # Not None while the files are not kept open: each read then opens one file at a time.
        # str: a Path costs ~4x the memory.
        self.paths: list[str] | None = [str(path) for path in paths.values()]
        self.slots: list[int] = []  # the open descriptors, in order (absent files have none)
        self._at: list[int] | None = None  # each descriptor's place in the answer, when some are absent
        if keep:
            self.keep()

    def keep(self) -> bool:
        """Open the files to keep them open; False (still reading path by path) when out of descriptors.

        Raises:
            OSError: anything but a missing file or running out of descriptors.
        """
        assert self.paths is not None, "already kept"
        for name, path in zip(self.names, self.paths, strict=True):
            try:
                self.fds[name] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            except OSError as exc:
                if exc.errno in _GONE_ERRNOS:
                    continue
                self.close()
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    return False
                raise
        self.slots = list(self.fds.values())
        if len(self.slots) < len(self.names):
            self._at = [self.names.index(name) for name in self.fds]
        self.paths = None
        return True

    @property
    def kept(self) -> bool:
        return self.paths is None

    def read_all(self) -> list[bytes | None]:
        """Every file's current contents in the order given at open; None for the absent ones.

        One call per cgroup per tick: this loop is the agent's hot path.

        Raises:
            CgroupGone: the cgroup was removed since its files were opened.
        """
        if self.paths is not None:
            return [read_bytes(path, gone=True) for path in self.paths]
        try:
            # os.pread(fd, READ_SIZE, 0) for every descriptor, iterated in C (no Python loop).
            got: list[bytes | None] = list(map(os.pread, self.slots, repeat(READ_SIZE), repeat(0)))
        except OSError as exc:
            if exc.errno in _GONE_ERRNOS:
                raise CgroupGone(str(exc)) from exc
            raise
        if self._at is None:
            return got
        answer: list[bytes | None] = [None] * len(self.names)
        for at, data in zip(self._at, got, strict=True):
            answer[at] = data
        return answer

    def close(self) -> None:
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        self.slots = []


class CgroupGone(Exception):
    """The cgroup disappeared while its files were open: the job ended."""


def keyed_value(data: bytes | None, key: bytes) -> float:
    """Value of ``key`` in a 'key value' per line file (bytes); NaN if absent.

    ``key`` includes the trailing space (b"anon "), so 'anon_thp' never matches 'anon'.
    """
    if data is None:
        return NAN
    if data.startswith(key):
        start = len(key)
    else:
        at = data.find(b"\n" + key)
        if at < 0:
            return NAN
        start = at + 1 + len(key)
    end = data.find(b"\n", start)
    try:
        return float(data[start:end] if end >= 0 else data[start:])
    except ValueError:
        return NAN


def number_value(data: bytes | None) -> float:
    """A single-value file's bytes as a float: NaN when absent or not a number, +inf for 'max'."""
    if data is None:
        return NAN
    try:
        return float(data)  # surrounding whitespace (the newline) is allowed
    except ValueError:
        return math.inf if data.strip() == b"max" else NAN
