"""Process-tree source (psutil) for ``exec`` jobs that could not get a cgroup of their own."""

from __future__ import annotations

import math

import psutil
from jobpulse.agent.sources.base import JobReading, NoData


class ProcTree:
    """Sums CPU and RSS over a root process and its live descendants.

    CPU of descendants that already exited is only visible once the root has
    waited for them (children_user/children_system), so this is a lower bound
    that exec corrects with its own rusage at the end.
    """

    def __init__(self, job_id: str, pid: int) -> None:
        self.job_id = job_id
        self.pid = pid
        self._proc = psutil.Process(pid)
        self._peak = 0.0

    def read(self) -> JobReading:
        try:
            procs = [self._proc, *self._proc.children(recursive=True)]
        except psutil.NoSuchProcess as exc:
            raise NoData(f"process {self.pid} of job {self.job_id} is gone") from exc
        user = system = rss = 0.0
        alive = 0
        for index, proc in enumerate(procs):
            try:
                times = proc.cpu_times()
                rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            alive += 1
            user += times.user
            system += times.system
            if index == 0:
                user += times.children_user
                system += times.children_system
        if alive == 0:
            raise NoData(f"process tree of job {self.job_id} is gone")
        self._peak = max(self._peak, rss)
        return JobReading(
            job_id=self.job_id,
            cpu_user_seconds=user,
            cpu_system_seconds=system,
            mem_current_bytes=rss,
            mem_peak_bytes=self._peak,
            mem_anon_bytes=rss,
            mem_limit_bytes=math.inf,
            alloc_cpus=float(len(self._proc.cpu_affinity() or []))
            if hasattr(self._proc, "cpu_affinity")
            else math.nan,
            pids=float(alive),
        )
