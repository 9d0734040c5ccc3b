"""A short job's final counters on real cgroup v1, read as Slurm removes its steps.

slurmstepd removes a step's directory as the step ends and the job's own directory some milliseconds
later (7-14 ms measured), before the epilog runs: the job's last CPU-seconds are readable only in that
gap. The agent watches each job's cpuacct directory (inotify IN_DELETE) and reads the job level then."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jobpulse.agent.sampler import Sampler
from jobpulse.agent.sources.base import VALUE_FIELDS
from support import cgroup_v1_writable, v1_node_tops

ROOT = Path("/sys/fs/cgroup")
_reason = cgroup_v1_writable(ROOT) or (
    None if (ROOT / "cpuacct").is_dir() and (ROOT / "memory").is_dir() else "no cgroup v1 cpuacct/memory"
)
pytestmark = [pytest.mark.cgroup, pytest.mark.skipif(_reason is not None, reason=str(_reason))]

BURN = "import time\nwhile time.process_time() < 0.6: pass\n"
CPU_USER, CPU_SYSTEM = (2 + VALUE_FIELDS.index(f) for f in ("cpu_user_seconds", "cpu_system_seconds"))


def test_the_job_level_is_read_when_its_last_step_goes() -> None:
    with v1_node_tops("jpend", ("cpuacct", "memory")) as tops:
        sampler = Sampler(ROOT, node=tops[0].name.removeprefix("slurm_"))
        try:
            jobs = [top / "uid_0" / "job_8" for top in tops]
            for job in jobs:
                (job / "step_batch" / "task_0").mkdir(parents=True)
            sampler.rows()  # a tick while the job runs: it is watched from now on
            tasks = " ".join(str(job / "step_batch" / "task_0" / "cgroup.procs") for job in jobs)
            burn = subprocess.run(
                [
                    "sh",
                    "-c",
                    f'for f in {tasks}; do echo $$ > $f; done; exec "$0" -c "$1"',
                    sys.executable,
                    BURN,
                ],
                check=False,
            )
            assert burn.returncode == 0
            kernel = int((jobs[0] / "cpuacct.usage").read_text()) / 1e9  # final: every process is gone
            assert kernel >= 0.6
            for job in jobs:  # as slurmstepd does: the step, then the job a few milliseconds later
                (job / "step_batch" / "task_0").rmdir()
                (job / "step_batch").rmdir()
            time.sleep(0.01)
            for job in jobs:
                job.rmdir()
            time.sleep(0.05)
            _, rows = sampler.rows()
            final = [row for row in rows if row[0] == "8" and row[1] == ""]
            assert len(final) == 1, rows
            measured = final[0][CPU_USER] + final[0][CPU_SYSTEM]
            assert math.isclose(measured, kernel, rel_tol=1e-6), (measured, kernel)
            sampler.forget("8")
            assert [row for row in sampler.rows()[1] if row[0] == "8"] == []
        finally:
            sampler.close()
