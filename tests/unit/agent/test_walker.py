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


def _v1_multi_slurmd(root: Path, jobs: dict[str, str]) -> Path:
    """A cgroup v1 host running several slurmd, as multinode.md captured it: one ``slurm_<node>`` root
    per node in every controller; the job tree is the real capture of job 88 (tests/fixtures/v1)."""
    captured = FIXTURES / "v1" / "sys" / "fs" / "cgroup"
    for controller in ("cpuacct", "memory", "cpuset"):
        for top, job in jobs.items():
            shutil.copytree(
                captured / controller / "slurm_vm" / "uid_0" / "job_88",
                root / controller / top / "uid_0" / f"job_{job}",
            )
    return root


def test_each_node_agent_reads_only_its_own_slurmd_root(tmp_path: Path) -> None:
    root = _v1_multi_slurmd(tmp_path / "cg", {"slurm_n1": "11", "slurm_n2": "12", "slurm_n3": "13"})
    for node, job in (("n1", "11"), ("n2", "12"), ("n3", "13")):
        sampler = Sampler(root, node=node)
        try:
            assert {r.job_id for r in sampler.collect()} == {job}, node
        finally:
            sampler.close()
        assert discovery.discover(root, tasks=True, node=node).keys() == {job}
    # A node whose slurmd has not made its root yet reads none of the others'.
    assert discovery.discover(root, node="n4") == {}
    # Without a node name, or on a host with one slurmd whose NodeName is not the host name, all of them.
    assert discovery.discover(root).keys() == {"11", "12", "13"}
    single = _v1_multi_slurmd(tmp_path / "single", {"slurm_vm": "21"})
    assert discovery.discover(single, node="vm.example.org").keys() == {"21"}
