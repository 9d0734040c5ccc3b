"""OOM kills on cgroup v1, caught while the killed task's cgroup still exists.

On cgroup v1 the kernel counts ``oom_kill`` (in ``memory.oom_control``) only in the victim's own
cgroup, which under Slurm is a task directory (``job_<id>/step_batch/task_0``), never at the job or
step level the tick reads. And Slurm removes a step's directories as soon as the step ends: a batch
script that is itself OOM-killed takes its task directory with it within milliseconds, well inside
one tick. So the count has to be read when the OOM happens, not on the next tick.

The kernel can say when: an eventfd registered on a memory cgroup's ``memory.oom_control`` (through
``cgroup.event_control``) is signalled when that cgroup or one of its descendants goes out of memory,
and once more when the cgroup is removed. ``OomWatch`` registers one on every v1 job's memory
directory (where Slurm sets the job's limit), waits on all of them in one thread, and on a signal reads
``oom_kill`` of every cgroup below the job, a few times over the next moments (the kill is counted just
after the notification). Per job it keeps the largest count seen in each cgroup, so a count survives
its directory: the job's OOM kills are their sum (the counters are local, so the sum double-counts
nothing), a step's the sum below that step. The sampler puts these into the job's and steps' rows.

A job that is OOM-killed at once (a script allocating past its ``--mem`` right away) can start and end
between two ticks, so the tick's walk may never register it. ``watch_parent`` therefore also watches the
directories jobs are made in (``memory/slurm_<node>/uid_<uid>``, and ``slurm_<node>`` for new uids)
with inotify: slurmstepd makes them with mkdir(2), which inotify reports, so a job is registered
milliseconds after its directory appears.

Slurm removes ``uid_<uid>`` when that user's last job on the node ends and makes it again for their
next job. The new directory is a new inode, so it is watched anew whenever the root reports it made
(the old watch ends with IN_IGNORED, possibly later): every job of that user is registered as it
appears, not only the first.

The same inotify descriptor also catches a v1 job's end (``finals``): Slurm removes a job's step
directories as its steps end and the job's own directory 7-14 ms after its last process exited, before
the epilog runs, so the last tick can be up to a tick before the end (a 2-second job read -56 % CPU).
But rmdir(2) of a step directory is reported to a watch on the job's ``cpuacct`` directory (IN_DELETE)
while the job's directory, whose counters are hierarchical, still holds everything its steps used: the
job's final CPU-seconds and peak memory are read then (measured: within 0.2 % of sacct's TotalCPU on a
2-second job), and the sampler sends them as one more whole-job row.

On cgroup v2 ``memory.events`` ``oom_kill`` is hierarchical and the job's directory lasts until the job
ends, so the tick's own reading is enough there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field

from jobpulse.agent.finals import Finals
from jobpulse.agent.inotify import (
    IN_CREATE,
    IN_DELETE,
    IN_IGNORED,
    IN_ONLYDIR,
    open_inotify,
    read_events,
    read_file,
    readable,
)
from jobpulse.agent.sources.base import JobReading
from jobpulse.agent.sources.cgroup_v1 import split_usage
from jobpulse.common.timeutil import now_ms

log = logging.getLogger(__name__)
NS_PER_S = 1e9

_JOB_DIR = re.compile(r"job_(\d+)\Z")


# After a notification, read the counters every SETTLE_STEP seconds for up to SETTLE seconds, or until
# they rose: the OOM killer counts its kill just after notifying, and the task may be gone soon after.
SETTLE = 0.3
SETTLE_STEP = 0.002


def sibling(memory_dir: str, controller: str) -> str | None:
    """The same cgroup in another v1 controller (``.../memory/slurm_n1/uid_0/job_5`` ->
    ``.../cpuacct/...``, or ``cpu,cpuacct`` where the two share a mount); None when there is none."""
    head, sep, rel = memory_dir.rpartition("/memory/")
    if not sep:
        return None
    for name in (controller, f"cpu,{controller}", f"{controller},cpu"):
        candidate = f"{head}/{name}/{rel}"
        if os.path.isdir(candidate):
            return candidate
    return None


def local_oom_kills(directory: str) -> int | None:
    """This cgroup's own ``oom_kill`` count (v1 ``memory.oom_control``); None when it is gone."""
    try:
        with open(os.path.join(directory, "memory.oom_control"), "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    for line in data.splitlines():
        if line.startswith(b"oom_kill "):
            return int(line.split()[1])
    return 0


@dataclass
class _Watched:
    job_id: str
    directory: str  # the job's memory cgroup
    eventfd: int
    control: int  # memory.oom_control, held open while registered
    seen: dict[str, int] = field(default_factory=dict)  # path below the job -> largest oom_kill seen


class OomWatch:
    """One thread waiting on an eventfd per v1 job; ``kills(job)`` gives what it counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, _Watched] = {}  # job id -> its registration
        self._by_fd: dict[int, _Watched] = {}
        self._counts: dict[str, dict[str, int]] = {}  # job id -> step ("" for the job) -> kills
        self._wake_r, self._wake_w = os.pipe()
        self._stopped = False
        self._thread: threading.Thread | None = None
        inotify = open_inotify()
        self._libc: ctypes.CDLL | None = inotify[0] if inotify is not None else None
        self._inotify = inotify[1] if inotify is not None else -1
        self._parents: dict[int, str] = {}  # inotify watch descriptor -> directory jobs are made in
        self._uid_parents: set[int] = set()  # of those, the slurm_<node> roots (new uid_ dirs)
        self._watched_dirs: set[str] = set()
        # inotify watch descriptor -> (job id, its cpuacct directory, its memory directory): step removals
        self._job_dirs: dict[int, tuple[str, str, str]] = {}
        self._finals = Finals()  # job id -> its figures as its last step went
        self._ends: set[str] = set()  # jobs whose step removals are watched
        # job id -> (memory directory, until when): jobs inotify reported before their control files
        # could be opened, tried again by the watch thread (only that thread touches this)
        self._retry: dict[str, tuple[str, float]] = {}

    def watch_parent(self, directory: str, uids: bool = False, made: bool = False) -> None:
        """Register every job made in ``directory`` as it appears (``uids``: a root whose new ``uid_``
        directories are to be watched in turn; ``made``: inotify just reported it made, so it is a new
        directory even where one of that name was watched before)."""
        if self._libc is None or (directory in self._watched_dirs and not made):
            return
        wd = int(self._libc.inotify_add_watch(self._inotify, os.fsencode(directory), IN_CREATE | IN_ONLYDIR))
        if wd < 0:
            return
        self._watched_dirs.add(directory)
        self._parents[wd] = directory
        if uids:
            self._uid_parents.add(wd)
        self._start()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="jobpulse-oomwatch", daemon=True)
            self._thread.start()
        else:
            os.write(self._wake_w, b"x")  # wait on the new descriptor too

    def _created(self) -> None:
        """Directories inotify saw made: register new jobs, watch new uid directories."""
        for wd, _mask, name in read_events(self._inotify):
            ended = self._job_dirs.get(wd)
            if ended is not None:
                if _mask & IN_IGNORED:  # the job's directory went: its watch with it
                    self._job_dirs.pop(wd, None)
                elif _mask & IN_DELETE and name.startswith("step_"):
                    self._read_final(*ended)
                continue
            parent = self._parents.get(wd)
            if parent is None:
                continue
            if _mask & IN_IGNORED:
                # The directory went (Slurm removes uid_<uid> with that user's last job on the node and
                # makes it again for the next; the kernel may report this only after the new one came).
                self._forget_parent(wd, parent)
                continue
            path = os.path.join(parent, name)
            if wd in self._uid_parents and name.startswith("uid_"):
                self.watch_parent(path, made=True)
                for existing in os.listdir(path) if os.path.isdir(path) else []:
                    if (match := _JOB_DIR.match(existing)) is not None:
                        self._watch_new(match.group(1), os.path.join(path, existing))
            elif (match := _JOB_DIR.match(name)) is not None:
                self._watch_new(match.group(1), path)

    def _watch_new(self, job_id: str, memory_dir: str) -> None:
        """``watch`` a job inotify just reported, and try again for a second while it is not whole: slurmstepd
        makes the job's memory directory before its cpuacct one, so the step removals (its final
        readings) could not be watched yet, and only the next tick would have (a job ending before it
        lost them: seen as a registration missed now and then)."""
        if not self._whole(job_id, memory_dir) and os.path.isdir(memory_dir):
            self._retry[job_id] = (memory_dir, time.monotonic() + 1.0)

    def _whole(self, job_id: str, memory_dir: str) -> bool:
        return self.watch(job_id, memory_dir) and job_id in self._ends

    def _retry_pending(self) -> None:
        for job_id, (memory_dir, until) in list(self._retry.items()):
            if self._whole(job_id, memory_dir) or time.monotonic() > until or not os.path.isdir(memory_dir):
                del self._retry[job_id]

    def _forget_parent(self, wd: int, directory: str) -> None:
        self._parents.pop(wd, None)
        self._uid_parents.discard(wd)
        if directory not in self._parents.values():  # not made again and watched anew meanwhile
            self._watched_dirs.discard(directory)

    def watch(self, job_id: str, memory_dir: str) -> bool:
        """Be told of OOMs in this job's memory cgroup; False when that cannot be (not v1, gone)."""
        with self._lock:
            known = job_id in self._jobs
        if known:
            if job_id not in self._ends:  # its cpuacct directory may have come after its memory one
                self._watch_end(job_id, memory_dir)
            return True
        control = efd = -1
        try:
            control = os.open(os.path.join(memory_dir, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            # O_WRONLY without O_CREAT: never make the file where there is no cgroupfs (a fixture tree)
            target = os.open(os.path.join(memory_dir, "cgroup.event_control"), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(target, f"{efd} {control}".encode())
            finally:
                os.close(target)
        except OSError as exc:
            for fd in (efd, control):
                if fd >= 0:
                    os.close(fd)
            log.debug("job %s: no OOM notification from %s: %s", job_id, memory_dir, exc)
            return False
        watched = _Watched(job_id, memory_dir, efd, control)
        with self._lock:
            self._jobs[job_id] = watched
            self._by_fd[efd] = watched
        self._scan(watched)  # an OOM that came before the registration
        self._watch_end(job_id, memory_dir)
        if threading.current_thread() is not self._thread:
            self._start()
        return True

    def _watch_end(self, job_id: str, memory_dir: str) -> None:
        """Be told when a step of the job is removed (IN_DELETE on its cpuacct directory)."""
        cpuacct_dir = sibling(memory_dir, "cpuacct")
        if self._libc is None or cpuacct_dir is None:
            return
        wd = int(
            self._libc.inotify_add_watch(self._inotify, os.fsencode(cpuacct_dir), IN_DELETE | IN_ONLYDIR)
        )
        if wd >= 0:
            self._job_dirs[wd] = (job_id, cpuacct_dir, memory_dir)
            self._ends.add(job_id)

    def _read_final(self, job_id: str, cpuacct_dir: str, memory_dir: str) -> None:
        """The job's counters now, as one of its steps went (its own directory is still there)."""
        stamp = now_ms()
        usage = read_file(os.path.join(cpuacct_dir, "cpuacct.usage"))
        if usage is None:
            return  # the job's directory went too
        user, system = split_usage(
            int(usage) / NS_PER_S, read_file(os.path.join(cpuacct_dir, "cpuacct.stat"))
        )
        peak = read_file(os.path.join(memory_dir, "memory.max_usage_in_bytes"))
        reading = JobReading(job_id=job_id, time_ms=stamp, cpu_user_seconds=user, cpu_system_seconds=system)
        if peak is not None:
            reading.mem_peak_bytes = float(int(peak))
        self._finals.put(reading)

    def take_finals(self, only: str | None = None) -> list[JobReading]:
        """The whole-job readings taken as steps went since the last call (of ``only``'s job)."""
        return self._finals.take(only)

    @property
    def finals(self) -> bool:
        return bool(self._finals)

    @property
    def counted(self) -> bool:
        """Whether any watched job has had an OOM kill (the sampler's rows need patching)."""
        return bool(self._counts)

    def watching(self, job_id: str) -> bool:
        return job_id in self._jobs and job_id in self._ends

    def kills(self, job_id: str) -> dict[str, int]:
        """step ("" for the whole job) -> OOM kills counted so far; empty when none."""
        return self._counts.get(job_id, {})

    def forget(self, job_id: str) -> None:
        with self._lock:
            watched = self._jobs.pop(job_id, None)
            if watched is not None:
                self._by_fd.pop(watched.eventfd, None)
                self._close(watched)
            self._counts.pop(job_id, None)
            self._finals.drop(job_id)
            self._ends.discard(job_id)
            for wd in [wd for wd, (job, _c, _m) in self._job_dirs.items() if job == job_id]:
                self._job_dirs.pop(wd, None)
                if self._libc is not None:
                    self._libc.inotify_rm_watch(self._inotify, wd)

    def close(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            for watched in self._jobs.values():
                self._close(watched)
            self._jobs.clear()
            self._by_fd.clear()
        for fd in (self._wake_r, self._wake_w, self._inotify):
            if fd < 0:
                continue
            with contextlib.suppress(OSError):
                os.close(fd)

    @staticmethod
    def _close(watched: _Watched) -> None:
        """Close the registration's descriptors once: a job whose cgroup went is closed by the thread
        and later forgotten by the sampler, and a second close would hit whatever reused the numbers
        (the event socket's connections, the readers' open cgroup files)."""
        for fd in (watched.eventfd, watched.control):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        watched.eventfd = watched.control = -1

    def _run(self) -> None:
        while not self._stopped:
            with self._lock:
                fds = [self._wake_r, *self._by_fd]
            if self._inotify >= 0:
                fds.append(self._inotify)
            try:
                ready = readable(fds, 0.02 if self._retry else 5.0)
            except (OSError, ValueError):
                time.sleep(0.05)  # a descriptor closed under us: take the list again
                continue
            if self._retry:
                self._retry_pending()
            for fd in ready:
                if fd == self._wake_r:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 4096)
                    continue
                if fd == self._inotify:
                    self._created()
                    continue
                with self._lock:
                    watched = self._by_fd.get(fd)
                if watched is None:
                    continue
                with contextlib.suppress(OSError):
                    os.eventfd_read(fd)
                if not os.path.isdir(watched.directory):  # signalled by its removal: the job ended
                    with self._lock:
                        self._by_fd.pop(fd, None)
                        self._close(watched)
                    continue
                self._settle(watched)

    def _settle(self, watched: _Watched) -> None:
        """Read the counters until they rose (or SETTLE passed, or the job's cgroup went)."""
        before = sum(watched.seen.values())
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            if self._scan(watched) > before or not os.path.isdir(watched.directory):
                return
            time.sleep(SETTLE_STEP)

    def _scan(self, watched: _Watched) -> int:
        """Read oom_kill of every cgroup of the job now; returns the job's total so far."""
        seen = watched.seen
        for directory, dirs, _files in os.walk(watched.directory):
            dirs[:] = [d for d in dirs if d.startswith(("step_", "task_"))]
            count = local_oom_kills(directory)
            if count and count > seen.get(directory, 0):
                seen[directory] = count
        if seen:
            counts: dict[str, int] = {"": sum(seen.values())}
            prefix = len(watched.directory) + 1
            for path, count in seen.items():
                part = path[prefix:].split("/", 1)[0]
                if part.startswith("step_"):
                    step = part[len("step_") :]
                    counts[step] = counts.get(step, 0) + count
            self._counts[watched.job_id] = counts
        return sum(seen.values())
