"""The walker's memory between ticks: new and ended jobs are seen on the next tick, no descriptor leaks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from jobpulse.agent import discovery
from jobpulse.agent.sampler import Sampler
from support import FIXTURES

SCOPE = "system.slice/node1_slurmstepd.scope"


def open_dirs() -> set[str]:
    """Directories this process holds open."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if os.path.isdir(target):
            found.add(target)
    return found


def test_jobs_that_start_and_end_are_seen_on_the_next_tick(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    shutil.copytree(FIXTURES / "scenarios" / "v2_multi_slurmd", root)
    sampler = Sampler(root)
    try:
        assert {r.job_id for r in sampler.collect()} == {"101", "102"}
        shutil.copytree(root / SCOPE / "job_101", root / SCOPE / "job_103")
        rows = sampler.collect()
        assert {r.job_id for r in rows} == {"101", "102", "103"}
        assert {r.step for r in rows if r.job_id == "103"} == {"", "0", "extern"}
        assert str(root / SCOPE / "job_103") in open_dirs()  # watched through an open descriptor
        shutil.rmtree(root / SCOPE / "job_101")
        assert {r.job_id for r in sampler.collect()} == {"102", "103"}
        assert str(root / SCOPE / "job_101") not in open_dirs()
    finally:
        sampler.close()
    assert not [d for d in open_dirs() if d.startswith(str(root))]  # close() closed them all


def test_unchanged_tree_reads_the_same_jobs_every_tick() -> None:
    walker = discovery.Walker(FIXTURES / "scenarios" / "v2_multi_slurmd")
    try:
        first = walker.walk()
        for _ in range(discovery.RESCAN_EVERY + 2):  # through a periodic re-listing too
            again = walker.walk()
            assert {k: (j.v2, sorted(j.steps)) for k, j in again.items()} == {
                k: (j.v2, sorted(j.steps)) for k, j in first.items()
            }
        assert discovery.discover(FIXTURES / "scenarios" / "v2_multi_slurmd").keys() == first.keys()
    finally:
        walker.close()
