"""Find the jobs running on this node by walking the cgroup tree every tick.

Never trust one fixed path: Slurm's layout differs by cgroup version, by
multiple-slurmd builds (``slurm_<node>``, ``<node>_slurmstepd.scope``) and by
version. ``jobpulse-agent exec`` jobs live under ``jobpulse/`` in the same tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jobpulse.agent.sources.cgroup_v1 import V1Paths

JOB_DIR = re.compile(r"^job_(\d+)$")
STEP_DIR = re.compile(r"^step_(batch|extern|interactive|\d+)$")
EXEC_ROOT = "jobpulse"


@dataclass
class FoundJob:
    """A job's cgroup location; ``v2`` is a directory, ``v1`` the relative path shared by controllers."""

    job_id: str
    v2: Path | None = None
    v1: V1Paths | None = None
    steps: dict[str, Path | V1Paths] = field(default_factory=dict)


def is_unified(root: Path) -> bool:
    """True when ``root`` is a pure cgroup v2 mount."""
    return (root / "cgroup.controllers").exists()


def _dirs(path: Path) -> Iterator[Path]:
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    yield Path(entry.path)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return


def _v2_job_parents(root: Path) -> Iterator[Path]:
    for scope in _dirs(root / "system.slice"):
        if scope.name == "slurmstepd.scope" or scope.name.endswith("_slurmstepd.scope"):
            yield scope
    yield root / EXEC_ROOT


def _v1_job_parents(root: Path) -> Iterator[tuple[Path, str]]:
    """(directory under cpuacct, relative path) of every place job_<id> dirs can live."""
    base = root / "cpuacct"
    for top in _dirs(base):
        if top.name == "slurm" or top.name.startswith("slurm_"):
            for uid_dir in _dirs(top):
                if uid_dir.name.startswith("uid_"):
                    yield uid_dir, f"{top.name}/{uid_dir.name}"
    yield base / EXEC_ROOT, EXEC_ROOT


def discover(root: Path) -> dict[str, FoundJob]:
    """All job cgroups below ``root``, keyed by job id."""
    jobs: dict[str, FoundJob] = {}
    if is_unified(root):
        for parent in _v2_job_parents(root):
            for job_dir in _dirs(parent):
                match = JOB_DIR.match(job_dir.name)
                if match:
                    job = FoundJob(job_id=match.group(1), v2=job_dir)
                    for step_dir in _dirs(job_dir):
                        step = STEP_DIR.match(step_dir.name)
                        if step:
                            job.steps[step.group(1)] = step_dir
                    jobs[job.job_id] = job
        return jobs
    for parent, relative in _v1_job_parents(root):
        for job_dir in _dirs(parent):
            match = JOB_DIR.match(job_dir.name)
            if match:
                paths = V1Paths(root, f"{relative}/{job_dir.name}")
                job = FoundJob(job_id=match.group(1), v1=paths)
                for step_dir in _dirs(job_dir):
                    step = STEP_DIR.match(step_dir.name)
                    if step:
                        job.steps[step.group(1)] = V1Paths(root, f"{paths.relative}/{step_dir.name}")
                jobs[job.job_id] = job
    return jobs
