"""A short job's final counters on a real cgroup v2 hierarchy, read as Slurm removes its steps.

This host's controllers are bound to cgroup v1, but a cgroup2 hierarchy can be mounted beside them: it
has no controllers, yet the kernel keeps every cgroup's ``cpu.stat`` (usage, user, system) and its
``cgroup.events``, and rmdir(2) is reported to inotify as on a v2-only node. So the v2 end watch
(jobend_v2.py) is checked here against the kernel's own counters, in the layout Slurm makes on v2
(``system.slice/slurmstepd.scope/job_<id>/step_batch``), through the sampler as the agent runs it.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobpulse.agent.sampler import Sampler
from jobpulse.agent.sources.base import VALUE_FIELDS
from support import descriptors_past_1024

CPU_USER, CPU_SYSTEM = (2 + VALUE_FIELDS.index(f) for f in ("cpu_user_seconds", "cpu_system_seconds"))
BURN = "import time\nwhile time.process_time() < 0.6: pass\n"

pytestmark = [
    pytest.mark.cgroup,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a cgroup2 hierarchy needs root"),
]


@pytest.fixture
def v2_root() -> Iterator[Path]:
    """A cgroup2 hierarchy mounted for this test, unmounted after it (the test's own cgroups removed)."""
    mountpoint = Path(tempfile.mkdtemp(prefix="jp-cg2-"))
    mounted = subprocess.run(
        ["mount", "-t", "cgroup2", "none", str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount cgroup2 here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(
            ["find", str(mountpoint / "system.slice"), "-mindepth", "1", "-depth", "-type", "d", "-delete"],
            check=False,
            capture_output=True,
        )
        for leftover in (mountpoint / "system.slice",):
            if leftover.is_dir():
                leftover.rmdir()
        subprocess.run(["umount", str(mountpoint)], check=False)
        mountpoint.rmdir()


def _burn_in(step: Path) -> None:
    """A process that joins ``step`` and uses 0.6 s of CPU, then exits (the cgroup becomes empty)."""
    burn = subprocess.run(
        ["sh", "-c", f'echo $$ > {step / "cgroup.procs"}; exec "$0" -c "$1"', sys.executable, BURN],
        check=False,
    )
    assert burn.returncode == 0


def _kernel_seconds(directory: Path) -> float:
    fields = dict(line.split() for line in (directory / "cpu.stat").read_text().splitlines())
    return (int(fields["user_usec"]) + int(fields["system_usec"])) / 1e6


@pytest.mark.parametrize("many", [False, True], ids=["few-descriptors", "descriptors-past-1024"])
def test_the_job_level_is_read_when_its_last_step_goes(v2_root: Path, many: bool) -> None:
    """``many``: the agent's descriptors numbered past 1024 (a busy node): the watch thread waited with
    select(2), which cannot wait on those, and its thread ended, so no final reading was ever taken."""
    with descriptors_past_1024() if many else contextlib.nullcontext():
        _job_level_case(v2_root)


def _job_level_case(v2_root: Path) -> None:
    scope = v2_root / "system.slice" / "slurmstepd.scope"
    job = scope / "job_9"
    (job / "step_batch").mkdir(parents=True)
    sampler = Sampler(v2_root)
    try:
        sampler.rows()  # a tick while the job runs: its directory is watched from now on
        _burn_in(job / "step_batch")
        kernel = _kernel_seconds(job)  # final: every process is gone
        assert kernel >= 0.6
        (job / "step_batch").rmdir()  # as slurmstepd does: the step, then the job right after
        time.sleep(0.01)
        job.rmdir()
        time.sleep(0.05)
        _, rows = sampler.rows()
        final = [row for row in rows if row[0] == "9" and row[1] == ""]
        assert len(final) == 1, rows
        measured = final[0][CPU_USER] + final[0][CPU_SYSTEM]
        assert math.isclose(measured, kernel, rel_tol=1e-6), (measured, kernel)
        sampler.forget("9")
        assert [row for row in sampler.rows()[1] if row[0] == "9"] == []
    finally:
        sampler.close()


def test_a_job_that_starts_and_ends_between_two_ticks_is_read(v2_root: Path) -> None:
    """The directory jobs are made in is watched: a job born after the last tick is registered as its
    directory appears, and read as its step goes, although no tick ever saw it."""
    scope = v2_root / "system.slice" / "slurmstepd.scope"
    (scope / "job_1").mkdir(parents=True)  # another job, so that the scope exists at the first tick
    sampler = Sampler(v2_root)
    try:
        sampler.rows()
        job = scope / "job_10"
        (job / "step_batch").mkdir(parents=True)
        time.sleep(0.05)  # the watch on the new job's directory is made from its IN_CREATE
        _burn_in(job / "step_batch")
        kernel = _kernel_seconds(job)
        (job / "step_batch").rmdir()
        time.sleep(0.01)  # slurmstepd's gap between the last step and the job (7-14 ms measured on v1)
        job.rmdir()
        time.sleep(0.05)
        final = [row for row in sampler.rows()[1] if row[0] == "10" and row[1] == ""]
        assert len(final) == 1
        assert math.isclose(final[0][CPU_USER] + final[0][CPU_SYSTEM], kernel, rel_tol=1e-6)
    finally:
        sampler.close()
