"""Find the jobs running on this node by walking the cgroup tree every tick.

Never trust one fixed path: Slurm's layout differs by cgroup version, by
multiple-slurmd builds (``slurm_<node>``, ``<node>_slurmstepd.scope``) and by
version (Slurm 26.05 names job directories by SLUID, ``s`` + 13 Crockford
base32 characters, instead of ``job_<id>``). ``jobpulse-agent exec`` jobs live
under ``jobpulse/`` in the same tree.

Supported layouts (``<root>`` is the cgroup mount, a setting):

- v2: ``<root>/system.slice/[<node>_]slurmstepd.scope/{job_<id>|<sluid>}/step_<s>/user/task_<t>``
  (``system/`` under the scope and the job holds slurmstepd itself and is skipped)
- v1: ``<root>/<controller>/slurm[_<node>]/uid_<uid>/job_<id>/step_<s>/task_<t>``
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobpulse.agent.sources.cgroup_v1 import V1Paths

JOB_DIR = re.compile(r"^job_(\d+)$")
# Crockford base32 leaves out I, L, O and U.
SLUID_DIR = re.compile(r"^s[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{13}$")
STEP_DIR = re.compile(r"^step_(batch|extern|interactive|\d+)$")
TASK_DIR = re.compile(r"^task_(\d+|special)$")
EXEC_ROOT = "jobpulse"
# Controllers whose tree can tell which jobs exist, in order of preference.
V1_LISTING_CONTROLLERS = ("cpuacct", "memory", "cpuset")


@dataclass
class FoundJob:
    """A job's cgroup location; ``v2`` is a directory, ``v1`` the relative path shared by controllers.

    ``sluid`` is set when the directory was named by SLUID; ``job_id`` is then
    the mapped job number, or the SLUID itself while no mapping is known
    (``mapped`` False).
    """

    job_id: str
    v2: Path | None = None
    v1: V1Paths | None = None
    steps: dict[str, Path | V1Paths] = field(default_factory=dict)
    tasks: dict[str, list[str]] = field(default_factory=dict)
    sluid: str = ""
    mapped: bool = True


def is_unified(root: Path) -> bool:
    """True when ``root`` is a pure cgroup v2 mount."""
    return (root / "cgroup.controllers").exists()


def _dirs(path: Path | str) -> Iterator[str]:
    """Names of the subdirectories (os.scandir: no stat per entry on cgroupfs)."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    yield entry.name
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return


def _v2_job_parents(root: Path) -> Iterator[Path]:
    slice_dir = root / "system.slice"
    for name in _dirs(slice_dir):
        if name == "slurmstepd.scope" or name.endswith("_slurmstepd.scope"):
            yield slice_dir / name
    yield root / EXEC_ROOT


def _v1_job_parents(root: Path) -> Iterator[tuple[Path, str]]:
    """(listing directory, path relative to the controller) of every place job dirs can live."""
    for controller in V1_LISTING_CONTROLLERS:
        base = root / controller
        tops = [name for name in _dirs(base) if name == "slurm" or name.startswith("slurm_")]
        if not tops:
            continue
        for top in tops:
            for uid_dir in _dirs(base / top):
                if uid_dir.startswith("uid_"):
                    yield base / top / uid_dir, f"{top}/{uid_dir}"
        break
    for controller in V1_LISTING_CONTROLLERS:
        if (root / controller / EXEC_ROOT).is_dir():
            yield root / controller / EXEC_ROOT, EXEC_ROOT
            break


def _job_of(name: str, sluids: Mapping[str, str]) -> FoundJob | None:
    match = JOB_DIR.match(name)
    if match:
        return FoundJob(job_id=match.group(1))
    if SLUID_DIR.match(name):
        job_id = sluids.get(name) or sluids.get(name.lower()) or sluids.get(name.upper())
        return FoundJob(job_id=job_id or name, sluid=name, mapped=job_id is not None)
    return None


def _tasks(step_dir: str, unified: bool) -> list[str]:
    where = os.path.join(step_dir, "user") if unified else step_dir
    return sorted(name for name in _dirs(where) if TASK_DIR.match(name))


def discover(root: Path, sluids: Mapping[str, str] | None = None, tasks: bool = False) -> dict[str, FoundJob]:
    """All job cgroups below ``root``, keyed by job id (by SLUID while unmapped).

    ``sluids`` maps SLUID -> job id (from the prolog's state files and start
    events). ``tasks`` also lists each step's task directories (for ``once``;
    the tick does not need them).
    """
    sluids = sluids or {}
    jobs: dict[str, FoundJob] = {}
    if is_unified(root):
        for parent in _v2_job_parents(root):
            for name in _dirs(parent):
                job = _job_of(name, sluids)
                if job is None:
                    continue
                job.v2 = parent / name
                job_dir = str(job.v2)
                for step_name in _dirs(job_dir):
                    step = STEP_DIR.match(step_name)
                    if step:
                        step_path = os.path.join(job_dir, step_name)
                        job.steps[step.group(1)] = Path(step_path)
                        if tasks:
                            job.tasks[step.group(1)] = _tasks(step_path, unified=True)
                jobs[job.job_id] = job
        return jobs
    for parent, relative in _v1_job_parents(root):
        for name in _dirs(parent):
            job = _job_of(name, sluids)
            if job is None:
                continue
            job.v1 = V1Paths(root, f"{relative}/{name}")
            job_dir = os.path.join(parent, name)
            for step_name in _dirs(job_dir):
                step = STEP_DIR.match(step_name)
                if step:
                    job.steps[step.group(1)] = V1Paths(root, f"{job.v1.relative}/{step_name}")
                    if tasks:
                        job.tasks[step.group(1)] = _tasks(os.path.join(job_dir, step_name), unified=False)
            jobs[job.job_id] = job
    return jobs
