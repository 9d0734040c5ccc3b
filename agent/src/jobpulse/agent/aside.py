"""Set aside what the agent cannot deliver (a spooled event it cannot read or handle, a batch the
collector refused), instead of retrying it forever or deleting it unseen.

Things set aside go to a ``rejected/`` directory next to where they were (``<state_dir>/events/rejected``,
``<state_dir>/spool/rejected``), root-only like the rest of the state directory, with the reason
beside them; the newest ``KEEP`` entries are kept, so a flood of bad input cannot fill the disk.
Imports stay light: the prolog/epilog import ``events``, which imports this.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

REJECTED = "rejected"
KEEP = 1000  # entries per rejected/ directory (the oldest go first)
REASON = ".reason"


def _directory(parent: Path) -> Path:
    directory = parent / REJECTED
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def trim(directory: Path, keep: int = KEEP) -> None:
    """Delete the oldest entries (by name: names start with a time or a sequence number) beyond ``keep``."""
    entries = sorted(
        p for p in directory.iterdir() if not p.name.endswith(REASON) and not p.name.startswith(".")
    )
    for old in entries[: max(0, len(entries) - keep)]:
        old.unlink(missing_ok=True)
        old.with_name(old.name + REASON).unlink(missing_ok=True)


def move(path: Path, reason: str, keep: int = KEEP) -> Path | None:
    """Move ``path`` into ``rejected/`` beside it, with ``<name>.reason``; returns where it went.

    When it cannot be moved it is deleted (logged): a file left in place would be retried forever.
    """
    try:
        directory = _directory(path.parent)
        target = directory / path.name
        os.replace(path, target)
        _write(target.with_name(target.name + REASON), reason.encode("utf-8", "backslashreplace") + b"\n")
        trim(directory, keep)
        return target
    except OSError as exc:
        log.error("cannot set %s aside (%s); deleting it", path, exc)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def keep(parent: Path, name: str, data: bytes, keep: int = KEEP) -> Path | None:
    """Write ``data`` as ``rejected/<name>`` under ``parent``; None (logged) when that fails."""
    try:
        directory = _directory(parent)
        target = directory / name
        _write(target, data)
        trim(directory, keep)
        return target
    except OSError as exc:
        log.error("cannot keep %s under %s: %s", name, parent / REJECTED, exc)
        return None
