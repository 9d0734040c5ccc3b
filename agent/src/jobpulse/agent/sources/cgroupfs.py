"""Parsing helpers for the kernel's cgroup file formats, shared by the v1 and v2 readers."""

from __future__ import annotations

import contextlib
import errno
import math
import os
from pathlib import Path

NAN = math.nan


def read_text(path: Path) -> str | None:
    """File contents, or None when the file (or its cgroup) does not exist.

    A missing file is normal: optional controllers, or a job that ended between
    listing and reading.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read().decode()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == 19:  # ENODEV: the cgroup was removed while we read it
            return None
        raise


def read_number(path: Path) -> float:
    """A single-value file ('123' or 'max') as a float; NaN if absent, +inf for 'max'."""
    text = read_text(path)
    if text is None:
        return NAN
    text = text.strip()
    if text == "max":
        return math.inf
    try:
        return float(text)
    except ValueError:
        return NAN


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


# --- The hot path: files opened once per cgroup and re-read with pread. ---
#
# Opening a cgroup file costs about as much as reading it, so a job's files are
# opened when the job first appears and closed when it goes away; each tick is
# one pread per file. Parsing looks up only the keys the agent reports.

_GONE_ERRNOS = frozenset({errno.ENODEV, errno.ENOENT, errno.ESRCH})


class FileSet:
    """Open descriptors for some files of one cgroup; a file that does not exist is simply absent."""

    __slots__ = ("fds", "names", "paths", "slots")

    def __init__(self, paths: dict[str, Path], keep: bool = True) -> None:
        self.names = list(paths)
        self.fds: dict[str, int] = {}
        # keep=False: nothing stays open, each read opens one file at a time (out of descriptors).
        self.paths = None if keep else list(paths.values())
        self.slots: list[int] = []
        if not keep:
            return
        for name, path in paths.items():
            try:
                self.fds[name] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            except OSError as exc:
                if exc.errno not in _GONE_ERRNOS:
                    self.close()
                    raise
        self.slots = [self.fds.get(name, -1) for name in self.names]

    def read_all(self) -> list[bytes | None]:
        """Every file's current contents in the order given at open; None for the absent ones.

        One call per cgroup per tick: this loop is the agent's hot path.

        Raises:
            CgroupGone: the cgroup was removed since its files were opened.
        """
        if self.paths is not None:
            return [_read_bytes(path) for path in self.paths]
        pread = os.pread
        try:
            return [pread(fd, 65536, 0) if fd >= 0 else None for fd in self.slots]
        except OSError as exc:
            if exc.errno in _GONE_ERRNOS:
                raise CgroupGone(str(exc)) from exc
            raise

    def close(self) -> None:
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        self.slots = []


def _read_bytes(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    try:
        return os.pread(fd, 65536, 0)
    except OSError as exc:
        if exc.errno in _GONE_ERRNOS:
            raise CgroupGone(str(exc)) from exc
        raise
    finally:
        os.close(fd)


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
    """A single-value file's bytes as a float: NaN when absent, +inf for 'max'."""
    if data is None:
        return NAN
    data = data.strip()
    if data == b"max":
        return math.inf
    try:
        return float(data)
    except ValueError:
        return NAN
