"""OOM kills on real cgroup v1, in the race Slurm makes: a job's directory appears after the agent's last
walk, its only task is OOM-killed at once, and the whole tree is removed right after (slurmstepd does so
within milliseconds), all between two ticks. The kernel counts the kill only in the task's cgroup."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from jobpulse.agent.sampler import Sampler
from support import cgroup_v1_writable, v1_node_tops

ROOT = Path("/sys/fs/cgroup")
_reason = cgroup_v1_writable(ROOT) or (
    None if (ROOT / "memory").is_dir() else "no cgroup v1 memory controller"
)
pytestmark = [pytest.mark.cgroup, pytest.mark.skipif(_reason is not None, reason=str(_reason))]

ALLOCATE = "block = bytearray(300 * 1024 * 1024)\nfor i in range(0, len(block), 4096):\n    block[i] = 1\n"


def test_an_oom_kill_between_two_ticks_is_counted_after_the_cgroups_are_gone() -> None:
    with v1_node_tops("jpoom", ("memory", "cpuacct")) as tops:
        sampler = Sampler(ROOT, node=tops[0].name.removeprefix("slurm_"))
        try:
            sampler.rows()  # the last tick before the job
            jobs = [top / "uid_0" / "job_7" for top in tops]
            for job in jobs:
                (job / "step_batch" / "task_0").mkdir(parents=True)
            (jobs[0] / "memory.limit_in_bytes").write_text(str(100 * 2**20))  # Slurm's --mem=100M, job level
            task = jobs[0] / "step_batch" / "task_0"
            victim = subprocess.run(
                ["sh", "-c", f'echo $$ > {task}/cgroup.procs && exec "$0" -c "$1"', sys.executable, ALLOCATE],
                check=False,
            )
            assert victim.returncode == -9  # killed by the cgroup's OOM killer
            assert "oom_kill 1" in (task / "memory.oom_control").read_text()
            assert (
                "oom_kill 0" in (jobs[0] / "memory.oom_control").read_text()
            )  # v1 counts it in the task only
            for job in jobs:  # as slurmstepd does, right away
                for directory in (job / "step_batch" / "task_0", job / "step_batch", job):
                    directory.rmdir()
            time.sleep(0.05)
            assert sampler.final_oom_kills("7") == 1.0
            sampler.forget("7")
            assert sampler.final_oom_kills("7") is None
        finally:
            sampler.close()
