"""A cgroup v2 job's final counters, read as Slurm removes its steps (v1's are read in oomwatch.py).

Why: Slurm removes a job's cgroup right after its last process exits, before the epilog runs, so the
agent's last tick can be up to a tick before the end (a 2-second job read -56 % CPU on v1 before this
was done there). On v2 the job's own directory (``system.slice/[<node>_]slurmstepd.scope/job_<id>``)
outlives its steps and its ``cpu.stat`` keeps what removed steps used: the kernel folds a removed
cgroup's usage into its parent (checked on this host's kernel on a cgroup2 mount: a step's 0.51 s stayed
in the job's ``usage_usec`` after the step's rmdir). rmdir(2) of a step directory is reported to an
inotify watch on the job's directory (IN_DELETE), and the job's directory goes only after all its
steps. So each job's directory is watched, and every step removal reads the job's ``cpu.stat`` (and
``memory.peak`` where the kernel has it, 5.19 and later): the last such reading is the job's final one,
sent by the sampler as one more whole-job row.

The directories jobs are made in are watched too (IN_CREATE), so that a job that starts and ends between
two ticks is registered milliseconds after its directory appears, as oomwatch does on v1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading

from jobpulse.agent import inotify
from jobpulse.agent.finals import Finals
from jobpulse.agent.sources.base import JobReading
from jobpulse.common.timeutil import now_ms

log = logging.getLogger(__name__)

_JOB_DIR = re.compile(r"job_(\d+)\Z")
US_PER_S = 1e6


def read_final(job_id: str, job_dir: str) -> JobReading | None:
    """The job's counters now from its v2 directory; None when the directory is gone."""
    stamp = now_ms()
    stat = inotify.read_file(os.path.join(job_dir, "cpu.stat"))
    if stat is None:
        return None
    fields: dict[bytes, int] = {}
    for line in stat.splitlines():
        key, _, value = line.partition(b" ")
        if value.strip().isdigit():
            fields[key] = int(value)
    if b"user_usec" not in fields or b"system_usec" not in fields:
        return None
    reading = JobReading(
        job_id=job_id,
        time_ms=stamp,
        cpu_user_seconds=fields[b"user_usec"] / US_PER_S,
        cpu_system_seconds=fields[b"system_usec"] / US_PER_S,
    )
    peak = inotify.read_file(os.path.join(job_dir, "memory.peak"))
    if peak is not None and peak.strip().isdigit():
        reading.mem_peak_bytes = float(int(peak))
    return reading


class V2EndWatch:
    """One thread on one inotify descriptor; ``take_finals`` gives the readings taken as steps went."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        opened = inotify.open_inotify()
        self._libc = opened[0] if opened is not None else None
        self._fd = opened[1] if opened is not None else -1
        try:
            self._wake_r, self._wake_w = os.pipe()
        except OSError as exc:  # out of descriptors: no final readings, but the ticks go on
            log.warning("no v2 end watch (final readings at job end): %s", exc)
            self._wake_r = self._wake_w = -1
            if self._fd >= 0:
                os.close(self._fd)
            self._libc, self._fd = None, -1
        self._parents: dict[int, str] = {}  # watch descriptor -> a directory jobs are made in
        self._jobs: dict[int, tuple[str, str]] = {}  # watch descriptor -> (job id, its directory)
        self._watched: dict[str, int] = {}  # job id -> its watch descriptor
        self._parent_dirs: set[str] = set()
        self._finals = Finals()  # job id -> its figures as its last step went
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self._libc is not None

    def watch_parent(self, directory: str) -> None:
        """Register every numbered job made in ``directory`` as it appears."""
        if self._libc is None or directory in self._parent_dirs:
            return
        wd = int(
            self._libc.inotify_add_watch(
                self._fd, os.fsencode(directory), inotify.IN_CREATE | inotify.IN_ONLYDIR
            )
        )
        if wd < 0:
            return
        with self._lock:
            self._parent_dirs.add(directory)
            self._parents[wd] = directory
        self._start()

    def watch(self, job_id: str, job_dir: str) -> bool:
        """Be told when a step of the job is removed; False when that cannot be (gone, no inotify)."""
        if self._libc is None:
            return False
        with self._lock:
            if job_id in self._watched:
                return True
        wd = int(
            self._libc.inotify_add_watch(
                self._fd, os.fsencode(job_dir), inotify.IN_DELETE | inotify.IN_ONLYDIR
            )
        )
        if wd < 0:
            return False
        with self._lock:
            self._jobs[wd] = (job_id, job_dir)
            self._watched[job_id] = wd
        self._start()
        return True

    def watching(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._watched

    @property
    def finals(self) -> bool:
        return bool(self._finals)

    def take_finals(self, only: str | None = None) -> list[JobReading]:
        """The whole-job readings taken as steps went since the last call (of ``only``'s job)."""
        return self._finals.take(only)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._finals.drop(job_id)
            wd = self._watched.pop(job_id, None)
            if wd is not None:
                self._jobs.pop(wd, None)
        if wd is not None and self._libc is not None:
            self._libc.inotify_rm_watch(self._fd, wd)

    def close(self) -> None:
        self._stopped = True
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=2)
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = -1

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="jobpulse-v2-end", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            try:
                ready = inotify.readable([self._wake_r, self._fd], 5.0)
            except (OSError, ValueError):
                return  # closed
            if self._fd in ready:
                self._events()

    def _events(self) -> None:
        for wd, mask, name in inotify.read_events(self._fd):
            with self._lock:
                job = self._jobs.get(wd)
                parent = self._parents.get(wd)
            if job is not None:
                if mask & inotify.IN_IGNORED:  # the job's directory went, and its watch with it
                    with self._lock:
                        self._jobs.pop(wd, None)
                        if self._watched.get(job[0]) == wd:
                            del self._watched[job[0]]
                elif mask & inotify.IN_DELETE and name.startswith("step_"):
                    reading = read_final(*job)
                    if reading is not None:
                        self._finals.put(reading)
            elif parent is not None and mask & inotify.IN_CREATE and (match := _JOB_DIR.match(name)):
                self.watch(match.group(1), os.path.join(parent, name))
