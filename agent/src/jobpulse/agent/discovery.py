"""Find the jobs running on this node by walking the cgroup tree every tick, cheaply.

The layouts are in ``slurmtree``. Walking every tick must cost next to
nothing when nothing changed, which is almost every tick: each directory's
listing is kept with its (inode, link count, mtime) and listed again only
when that changes. On cgroupfs (kernfs) a directory's link count is 2 + its
subdirectories while its mtime never moves, so a subdirectory that ends
while another starts within one tick is not seen there; the readers notice
the ended one (its files read as gone) and ``invalidate`` has everything
listed again, and every directory is re-listed at least every
``RESCAN_EVERY`` walks anyway. Job directories are held open and checked
with ``fstat`` (no path lookup): a new step changes the job's link count.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jobpulse.agent.slurmtree import (
    EXEC_ROOT,
    JOB_DIR,
    SLUID_DIR,
    FoundJob,
    fill_job,
    is_unified,
    job_of,
    job_parents,
    maybe_job,
    names,
    scan,
    step_names,
    subdirs,
)

__all__ = ["EXEC_ROOT", "JOB_DIR", "SLUID_DIR", "FoundJob", "Walker", "discover", "is_unified"]

# Every directory is listed again at least this often (walks), even when nothing about it changed:
# a safety net only, since a new or ended subdirectory moves the link count and an ended
# step or job is noticed by its readers (see the module docstring).
RESCAN_EVERY = 30


@dataclass(slots=True)
class _Job:
    """A job directory the walker keeps: its descriptor, what it looked like, what it held."""

    fd: int  # O_DIRECTORY, for fstat; -1 when none could be opened (then stat by path)
    path: str
    relative: str | None
    stamp: tuple[int, int]  # (link count, mtime)
    listed_at: int
    entries: list[str]  # the directory's listing
    steps: list[str]
    job: FoundJob


class Walker:
    """``discover`` with memory between ticks, so walking the tree every tick stays cheap."""

    def __init__(self, root: Path, node: str = "") -> None:
        self.root = root
        self.node = node  # picks this node's own Slurm root where several slurmd share the host
        self.unmapped = False  # the last walk found SLUID directories with no job id yet
        self._unified: bool | None = None
        self._listings: dict[str, tuple[tuple[int, int, int], int, list[str]]] = {}
        self._parents: list[tuple[str, str | None]] = []
        self._jobs: dict[str, _Job] = {}  # job directory -> what the walker keeps of it
        self._found: dict[str, FoundJob] = {}
        self._walks = 0
        self._relisted = True

    @property
    def unified(self) -> bool:
        """Whether the root is cgroup v2 (known after the first walk; False before)."""
        return bool(self._unified)

    def v1_parents(self) -> list[str]:
        """The v1 directories jobs are made in, relative to a controller (``slurm_<node>/uid_<uid>``),
        as the last walk found them; the ``jobpulse`` root of exec jobs is left out."""
        return [relative for _, relative in self._parents if relative is not None and relative != EXEC_ROOT]

    def v2_parents(self) -> list[str]:
        """The v2 directories Slurm makes jobs in (``system.slice/[<node>_]slurmstepd.scope``), as the last
        walk found them; the ``jobpulse`` root of exec jobs is left out."""
        return [
            parent
            for parent, relative in self._parents
            if relative is None and os.path.basename(parent) != EXEC_ROOT
        ]

    def invalidate(self, job_id: str) -> None:
        """One of the job's cgroups vanished: list it, and every directory above it, again next walk."""
        for path in [p for p, kept in self._jobs.items() if kept.job.job_id == job_id]:
            self._drop(path)
        self._listings.clear()

    def _list(self, path: str, only_dirs: bool) -> list[str]:
        """The directory's (sub)directory names, listed again only when it changed."""
        try:
            st = os.stat(path)
        except OSError:
            self._listings.pop(path, None)
            return []
        stamp = (st.st_ino, st.st_nlink, st.st_mtime_ns)
        kept = self._listings.get(path)
        if kept is not None and kept[0] == stamp and self._walks - kept[1] < RESCAN_EVERY:
            return kept[2]
        listing = subdirs(path) if only_dirs else names(path)
        if kept is None or kept[2] != listing:
            self._relisted = True
        self._listings[path] = (stamp, self._walks, listing)
        return listing

    def _dirs(self, path: str) -> list[str]:
        return self._list(path, only_dirs=True)

    def walk(self, sluids: Mapping[str, str] | None = None, tasks: bool = False) -> dict[str, FoundJob]:
        """All job cgroups below the root, keyed by job id (by SLUID while unmapped).

        The answer is the same dict as last walk when nothing changed: do not modify it.
        """
        sluids = sluids or {}
        if tasks:  # ``once``: the task directories too, listed fresh
            return scan(self.root, sluids, tasks=True, node=self.node)
        self._walks += 1
        if self._unified is None:
            self._unified = is_unified(self.root)
        parents = list(job_parents(self.root, self._unified, self._dirs, self.node))
        if parents != self._parents:
            self._parents, self._relisted = parents, True
        listings = [(parent, relative, self._list(parent, only_dirs=False)) for parent, relative in parents]
        if self._relisted:  # something was created or removed: match the job directories again
            seen: set[str] = set()
            for parent, relative, listing in listings:
                for name in listing:
                    if maybe_job(name):
                        job_dir = os.path.join(parent, name)
                        seen.add(job_dir)
                        if job_dir not in self._jobs:
                            self._add(job_dir, name, relative, sluids)
            for path in [p for p in self._jobs if p not in seen]:
                self._drop(path)
        self._check_jobs(sluids)
        if self._relisted:
            self._relisted = False
            self._found = {kept.job.job_id: kept.job for kept in self._jobs.values()}
            self.unmapped = any(not job.mapped for job in self._found.values())
        return self._found

    def _check_jobs(self, sluids: Mapping[str, str]) -> None:
        """fstat each job directory: a step started or ended when its link count (or mtime) moved."""
        fstat, walks = os.fstat, self._walks
        for kept in self._jobs.values():
            try:
                st = fstat(kept.fd) if kept.fd >= 0 else os.stat(kept.path)
            except OSError:
                continue  # gone: the parent's listing drops it
            if (
                (st.st_nlink, st.st_mtime_ns) != kept.stamp
                or walks - kept.listed_at >= RESCAN_EVERY
                or not kept.job.mapped
            ):
                self._rescan(kept, (st.st_nlink, st.st_mtime_ns), sluids)

    def _add(self, job_dir: str, name: str, relative: str | None, sluids: Mapping[str, str]) -> None:
        if job_of(name, sluids) is None:
            return
        try:
            fd = os.open(job_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # ended just now
        except OSError:
            fd = -1  # out of descriptors: stat by path instead
        try:
            st = os.fstat(fd) if fd >= 0 else os.stat(job_dir)
        except OSError:
            if fd >= 0:
                os.close(fd)
            return  # ended just now
        stamp = (st.st_nlink, st.st_mtime_ns)  # what _check_jobs compares, so it does not list it again
        kept = _Job(fd, job_dir, relative, stamp, -1, [], [], FoundJob(job_id=""))
        self._jobs[job_dir] = kept
        self._rescan(kept, stamp, sluids)

    def _rescan(self, kept: _Job, stamp: tuple[int, int], sluids: Mapping[str, str]) -> None:
        """List the job's steps again; the same steps under the same name keep the same FoundJob."""
        kept.stamp, kept.listed_at = stamp, self._walks
        entries = names(kept.path)
        if entries == kept.entries and kept.job.mapped:
            return
        kept.entries = entries
        steps = step_names(entries)
        found = job_of(os.path.basename(kept.path), sluids)
        assert found is not None
        if steps == kept.steps and found.job_id == kept.job.job_id and found.mapped == kept.job.mapped:
            return
        fill_job(found, kept.path, self.root, kept.relative, steps, tasks=False)
        kept.steps, kept.job = steps, found
        self._relisted = True

    def _drop(self, path: str) -> None:
        kept = self._jobs.pop(path)
        if kept.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(kept.fd)
        self._relisted = True

    def close(self) -> None:
        for path in list(self._jobs):
            self._drop(path)


def discover(
    root: Path, sluids: Mapping[str, str] | None = None, tasks: bool = False, node: str = ""
) -> dict[str, FoundJob]:
    """All job cgroups below ``root``, keyed by job id (by SLUID while unmapped).

    ``sluids`` maps SLUID -> job id (from the prolog's state files and start
    events). ``tasks`` also lists each step's task directories (for ``once``;
    the tick does not need them).
    """
    return scan(root, sluids, tasks, node)
