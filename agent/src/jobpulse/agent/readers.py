"""The open readers of every job and step cgroup, read into rows once per tick.

A reader holds its cgroup's files open (re-read with pread) and its previous
reading (for rates) from the job's first tick until its cgroup is no longer
listed or reads as gone. A job that ends between listing and reading is
normal: its rows are simply missing from that tick. When the process runs
out of descriptors, new readers open their files at each read instead.
"""

from __future__ import annotations

import contextlib
import logging
import resource
from collections.abc import Mapping
from pathlib import Path

from jobpulse.agent import block
from jobpulse.agent.discovery import FoundJob
from jobpulse.agent.sources.base import NoData, Row
from jobpulse.agent.sources.cgroup_v1 import V1Paths, V1Reader
from jobpulse.agent.sources.cgroup_v2 import V2Reader
from jobpulse.agent.sources.cgroupfs import STATIC_EVERY

log = logging.getLogger(__name__)

Reader = block.Reader
Key = tuple[str, str]  # (job id, step; "" for the whole job)


class Readers:
    """(job, step) -> open reader, and the ancestors' memory limits the readers share."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.open: dict[Key, Reader] = {}
        self.limits: dict[str, float] = {}  # emptied every STATIC_EVERY ticks: limits are re-read
        self._ticks = 0
        self._fd_limit_logged = False
        # The fast path (block.py). The walker answers with the very same dict while nothing changed
        # (Walker.walk): when a per-reader tick's listing comes back unchanged, its readers become blocks,
        # which serve every tick with that listing. A listing that changes every tick never builds any.
        self._blocks: list[block.Block] | None = None
        self._listed: Mapping[str, FoundJob] | None = None  # the listing the readers (or blocks) match
        self._refresh_due = False  # limits and cpusets to re-read, by the next tick of every cgroup

    def rows(
        self, found: Mapping[str, FoundJob], stamp: int, only: str | None = None
    ) -> tuple[list[Row], set[str]]:
        """Every listed job's and step's row, and the jobs one of whose cgroups just vanished.

        The blocks answer when the listing is the one they were built for (then nothing
        vanished: a cgroup that did makes them fail, and this tick is read cgroup by cgroup).
        The per-reader loop runs once per cgroup per tick: nothing in it is rebuilt per
        tick that can be kept (the keys per job, the readers, their state).
        """
        self._ticks += 1
        if self._ticks % STATIC_EVERY == 0:
            self._refresh_due = True
        refresh = self._refresh_due and only is None  # served by a tick of every cgroup, fast or not
        if refresh:
            self.limits.clear()
        if only is None and found is self._listed:
            if self._blocks is None:
                self._blocks = block.build(self.open.values())
            if self._blocks is not None:
                fast = self._block_rows(stamp, refresh)
                if fast is not None:
                    self._refresh_due = False
                    return fast, set()
        self._dissolve()  # the readers' own state is current again: the per-reader path goes on
        rows: list[Row] = []
        append = rows.append
        readers = self.open
        vanished: set[str] = set()
        read = 0
        for job_id, job in found.items():
            if only is not None and job_id != only:
                continue
            for key, where in job.read_keys or _keys(job_id, job):
                reader = readers.get(key)
                try:
                    if reader is None:
                        reader = readers[key] = self._reader(key, where)  # reads its limits first
                    elif refresh:
                        reader.refresh()
                    append(reader.row(stamp))
                    read += 1
                except NoData as exc:
                    log.debug("job %s step %r vanished while reading: %s", job_id, key[1], exc)
                    vanished.add(job_id)
                    if not key[1]:
                        self.forget(job_id)
                        break  # the job ended between listing and reading: skip its steps
                    gone = readers.pop(key, None)
                    if gone is not None:
                        gone.close()
                except OSError as exc:
                    if reader is None or reader.files.kept:
                        raise
                    # Reading path by path (out of descriptors), it hit the limit: next tick, then.
                    log.debug("job %s step %r not read this tick: %s", job_id, key[1], exc)
                    read += 1
        if only is None and read != len(readers):
            self._close_unlisted(found)
        elif only is not None:
            self._close_unlisted({only: found[only]} if only in found else {}, only)
        if only is None:
            self._refresh_due = self._refresh_due and not refresh
            self._listed = None if vanished else found
        return rows, vanished

    def _block_rows(self, stamp: int, refresh: bool) -> list[Row] | None:
        """Every reader's row through the blocks, or None when a cgroup changed under them.

        All blocks or none: a block's new rate state is kept only once every block has read
        (``commit``), so the per-reader path that takes over reads against the last tick.
        """
        assert self._blocks is not None
        rows: list[Row] = []
        try:
            for each in self._blocks:
                rows += each.rows(stamp, refresh=refresh)
        except (OSError, block.Stale) as exc:
            log.debug("fast path left for this tick: %s", exc)
            return None
        for each in self._blocks:
            each.commit()
        return rows

    def _dissolve(self) -> None:
        """Give the blocks' rate state back to the readers and drop the blocks.

        Anything that closes a reader must dissolve first: a block would otherwise pread a
        closed descriptor, whose number the kernel may already have given to another file.
        """
        if self._blocks is not None:
            for each in self._blocks:
                each.dissolve()
        self._blocks = None

    def _reader(self, key: Key, where: Path | V1Paths) -> Reader:
        """A new reader, its files kept open if the process has descriptors left.

        Raises:
            NoData: the cgroup is already gone.
        """
        if isinstance(where, V1Paths):
            reader: Reader = V1Reader(where, key[0], key[1], limits=self.limits)
        else:
            reader = V2Reader(where, key[0], key[1], top=self.top, limits=self.limits)
        if not reader.files.kept and not self._fd_limit_logged:
            self._fd_limit_logged = True
            log.warning("out of file descriptors: reading new cgroups without keeping them open")
        return reader

    def _close_unlisted(self, found: Mapping[str, FoundJob], only: str | None = None) -> None:
        """Close the readers of cgroups no longer listed (their job or step ended)."""
        listed = {key for job_id, job in found.items() for key, _ in job.read_keys or _keys(job_id, job)}
        for key in [k for k in self.open if k not in listed and (only is None or k[0] == only)]:
            self.open.pop(key).close()

    def forget(self, job_id: str) -> None:
        self._dissolve()
        self._listed = None
        for key in [k for k in self.open if k[0] == job_id]:
            self.open.pop(key).close()

    def close(self) -> None:
        self._dissolve()
        for reader in self.open.values():
            reader.close()
        self.open.clear()


def _keys(job_id: str, job: FoundJob) -> list[tuple[Key, Path | V1Paths]]:
    """((job, step), location) of the job and each step, built once per listing of the job."""
    where = job.v2 if job.v2 is not None else job.v1
    assert where is not None
    keys = job.read_keys
    keys.append(((job_id, ""), where))
    keys += [((job_id, step), step_where) for step, step_where in job.steps.items()]
    return keys


def raise_fd_limit() -> None:
    """Each job and step keeps ~8 files open: lift the soft descriptor limit (often 1024) to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
