"""cgroup v1 reader against files captured from Debian's Slurm 22.05 (job 88, slurm_vm/uid_0)."""

from __future__ import annotations

import pytest
from jobpulse.agent import discovery
from jobpulse.agent.sources import cgroup_v1
from support import FIXTURES

ROOT = FIXTURES / "v1" / "sys" / "fs" / "cgroup"


def test_reads_the_kernels_exact_numbers() -> None:
    paths = cgroup_v1.V1Paths(ROOT, "slurm_vm/uid_0/job_88")
    r = cgroup_v1.read_job(paths, "88")
    # cpuacct.usage is exact (ns); cpuacct.stat's ticks (305 user, 42 system) only split it.
    assert r.cpu_seconds == pytest.approx(3.483093181)
    assert r.cpu_user_seconds == pytest.approx(3.483093181 * 305 / 347)
    assert r.alloc_cpus == 2  # cpuset 0-1
    assert r.mem_current_bytes == 367460352
    assert r.mem_peak_bytes == 401317888
    assert r.mem_anon_bytes == 321617920  # total_rss: the job's own 'rss' is 0, its tasks hold the pages
    assert r.mem_file_bytes == 43614208
    assert r.mem_limit_bytes == 999997440


def test_discovery_finds_the_multiple_slurmd_layout() -> None:
    found = discovery.discover(ROOT)
    assert list(found) == ["88"]
    assert found["88"].v1 == cgroup_v1.V1Paths(ROOT, "slurm_vm/uid_0/job_88")
    assert "batch" in found["88"].steps
