"""cgroup v2 reader against files captured from a real Slurm job on an H200 node (job 77)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from jobpulse.agent import discovery
from jobpulse.agent.sources import cgroup_v2
from jobpulse.agent.sources.base import NoData
from support import FIXTURES

ROOT = FIXTURES / "v2" / "sys" / "fs" / "cgroup"
JOB = ROOT / "system.slice" / "slurmstepd.scope" / "job_77"


def test_reads_the_kernels_exact_numbers() -> None:
    r = cgroup_v2.read_job(JOB, "77")
    assert r.cpu_user_seconds == pytest.approx(6.513926)
    assert r.cpu_system_seconds == pytest.approx(3.439945)
    assert r.alloc_cpus == 16  # cpuset.cpus.effective 0-15
    assert r.mem_current_bytes == 2017017856
    assert r.mem_peak_bytes == 2017017856
    assert r.mem_anon_bytes == 947523584
    assert r.mem_file_bytes == 1051521024
    assert math.isinf(r.mem_limit_bytes)  # memory.max = max
    assert r.oom_kills == 0
    assert r.io_read_bytes == 976011264
    assert r.io_write_bytes == 67121152
    assert r.pids == 18


def test_absent_controllers_are_not_measured_not_zero(tmp_path: Path) -> None:
    job = tmp_path / "job_5"
    shutil.copytree(JOB, job, ignore=shutil.ignore_patterns("step_*"))
    for name in ("io.stat", "pids.current", "memory.peak"):
        (job / name).unlink()
    r = cgroup_v2.read_job(job, "5")
    assert math.isnan(r.io_read_bytes) and math.isnan(r.io_write_bytes)
    assert math.isnan(r.pids)
    assert math.isnan(r.mem_peak_bytes)
    assert r.mem_current_bytes == 2017017856


def test_job_that_vanished_is_no_data(tmp_path: Path) -> None:
    with pytest.raises(NoData):
        cgroup_v2.read_job(tmp_path / "job_404", "404")


def test_discovery_finds_the_slurm_job() -> None:
    found = discovery.discover(ROOT)
    assert list(found) == ["77"]
    assert found["77"].v2 == JOB


def test_keys_in_another_order_are_still_found(tmp_path: Path) -> None:
    """The fast path assumes the kernel's order; a differently ordered file must read the same."""
    job = tmp_path / "job_6"
    shutil.copytree(JOB, job, ignore=shutil.ignore_patterns("step_*"))
    (job / "cpu.stat").write_text("system_usec 3439945\nuser_usec 6513926\nusage_usec 9953871\n")
    (job / "memory.stat").write_text("file 1051521024\nkernel 1\nanon 947523584\n")
    (job / "memory.events").write_text("oom_kill 3\nlow 0\n")
    (job / "io.stat").write_text(
        "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n254:0 rbytes=5 wbytes=7\n"
    )
    r = cgroup_v2.read_job(job, "6")
    assert (r.cpu_user_seconds, r.cpu_system_seconds) == (6.513926, 3.439945)
    assert (r.mem_anon_bytes, r.mem_file_bytes) == (947523584, 1051521024)
    assert r.oom_kills == 3
    assert (r.io_read_bytes, r.io_write_bytes) == (15, 27)
