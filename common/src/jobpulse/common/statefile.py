"""State files and directories: private whatever the umask, written atomically.

Why: a secret written with ``open("w")`` and no fsync is empty or cut short after a crash or power
loss during the first start, and a daemon that trusts it is broken for ever (every login a 500 with
an empty JWT secret). And a database created under the usual umask 022 is 0644: session ids, key
digests and password hashes readable by every local user.

- :func:`private_dir`: a directory created 0700 (an existing one is left alone; :func:`loose_mode`
  says whether it is open to others, for a warning).
- :func:`write_atomic`: temp file in the same directory (0600, ``O_EXCL``), write, ``fsync``,
  ``rename`` over the target, ``fsync`` the directory. Readers see the old content or the new, whole.
- :func:`create_private`: an empty file created 0600 (or an existing one of ours made 0600), before
  another library (SQLite) opens it with its default mode.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing; the directory itself 0700 whatever the umask."""
    if not path.is_dir():
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        path.chmod(PRIVATE_DIR)  # the umask may have taken bits away from mkdir's mode, never added
    return path


def loose_mode(path: Path) -> int | None:
    """The permission bits of ``path`` when group or others have any access, else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def create_private(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600: created so, or an existing file of ours narrowed.

    Raises:
        OSError: the file cannot be created, or an existing one cannot be narrowed (not ours).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str, mode: int = PRIVATE_FILE) -> None:
    """Replace ``path`` with ``data`` atomically and durably (temp file, fsync, rename, fsync dir)."""
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it further than asked
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: some file systems refuse fsync on directories)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "create_private", "loose_mode", "private_dir", "write_atomic"]
