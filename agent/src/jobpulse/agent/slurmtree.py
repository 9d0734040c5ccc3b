"""What Slurm's job cgroups look like, in every layout, and one full uncached scan of them.

Never trust one fixed path: Slurm's layout differs by cgroup version, by
multiple-slurmd builds (``slurm_<node>``, ``<node>_slurmstepd.scope``) and by
version (Slurm 26.05 names job directories by SLUID, ``s`` + 13 Crockford
base32 characters, instead of ``job_<id>``). ``jobpulse-agent exec`` jobs live
under ``jobpulse/`` in the same tree.

Supported layouts (``<root>`` is the cgroup mount, a setting):

- v2: ``<root>/system.slice/[<node>_]slurmstepd.scope/{job_<id>|<sluid>}/step_<s>/user/task_<t>``
  (``system/`` under the scope and the job holds slurmstepd itself and is skipped)
- v1: ``<root>/<controller>/slurm[_<node>]/uid_<uid>/job_<id>/step_<s>/task_<t>``

Several slurmd on one host (multiple-slurmd builds, or a test cluster) each have their own root
(``slurm_<node>``, ``<node>_slurmstepd.scope``), and each node's agent must read only its own:
``own_tops`` picks them by the agent's node name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
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
    # ((job id, step), location) of the job and each step, filled by readers._keys on first use.
    read_keys: list[tuple[tuple[str, str], Path | V1Paths]] = field(default_factory=list)


def is_unified(root: Path) -> bool:
    """True when ``root`` is a pure cgroup v2 mount."""
    return (root / "cgroup.controllers").exists()


def subdirs(path: Path | str) -> list[str]:
    """Names of the subdirectories (os.scandir: no stat per entry on cgroupfs)."""
    try:
        with os.scandir(path) as entries:
            return [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def names(path: Path | str) -> list[str]:
    """All entry names (os.listdir: no per-entry Python objects). Safe for job and step
    directories because no cgroup control file is named job_*, step_* or like a SLUID."""
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


Lister = Callable[[str], list[str]]


def own_tops(tops: list[str], node: str, plain: str, named: Callable[[str], str]) -> list[str]:
    """The Slurm roots among ``tops`` that belong to this node.

    ``plain`` is the root of a single-slurmd build (``slurm``, ``slurmstepd.scope``); ``named(node)``
    a node's root in a multiple-slurmd build. With its own named root present, a node reads only that
    one (and ``plain``): the others are other slurmd's on this host. Without one (no node name given,
    or the slurmd's NodeName is not the agent's node name) a single named root is taken as this node's;
    several, none of them ours, are other nodes' and left alone.
    """
    if not node:
        return tops
    mine = named(node)
    others = [top for top in tops if top != plain]
    if mine in others:
        return [top for top in tops if top in (plain, mine)]
    if len(others) <= 1:
        return tops
    return [top for top in tops if top == plain]


def job_parents(
    root: Path, unified: bool, dirs: Lister = subdirs, node: str = ""
) -> Iterator[tuple[str, str | None]]:
    """(directory, v1 path relative to the controller or None on v2) of every place job dirs can live.

    ``dirs`` lists a directory's subdirectories (the walker passes a cached one); ``node`` is the
    agent's node name, which picks its own root where several slurmd share the host (``own_tops``).
    """
    if unified:
        slice_dir = os.path.join(root, "system.slice")
        scopes = [
            name
            for name in dirs(slice_dir)
            if name == "slurmstepd.scope" or name.endswith("_slurmstepd.scope")
        ]
        for name in own_tops(scopes, node, "slurmstepd.scope", lambda n: f"{n}_slurmstepd.scope"):
            yield os.path.join(slice_dir, name), None
        yield os.path.join(root, EXEC_ROOT), None
        return
    listed: dict[str, list[str]] = {}  # each controller root listed (or stat'ed by the cache) once per walk

    def listing(controller: str) -> list[str]:
        if controller not in listed:
            listed[controller] = dirs(os.path.join(root, controller))
        return listed[controller]

    for controller in V1_LISTING_CONTROLLERS:
        base = os.path.join(root, controller)
        tops = [name for name in listing(controller) if name == "slurm" or name.startswith("slurm_")]
        for top in own_tops(tops, node, "slurm", lambda n: f"slurm_{n}"):
            for uid_dir in dirs(os.path.join(base, top)):
                if uid_dir.startswith("uid_"):
                    yield os.path.join(base, top, uid_dir), f"{top}/{uid_dir}"
        if tops:
            break
    for controller in V1_LISTING_CONTROLLERS:
        if EXEC_ROOT in listing(controller):
            yield os.path.join(root, controller, EXEC_ROOT), EXEC_ROOT
            break


def maybe_job(name: str) -> bool:
    """A cheap first filter before the regexes: most entries are control files such as memory.stat."""
    return name[:4] == "job_" or (len(name) == 14 and name[0] == "s")


def job_of(name: str, sluids: Mapping[str, str]) -> FoundJob | None:
    match = JOB_DIR.match(name)
    if match:
        return FoundJob(job_id=match.group(1))
    if SLUID_DIR.match(name):
        job_id = sluids.get(name) or sluids.get(name.lower()) or sluids.get(name.upper())
        return FoundJob(job_id=job_id or name, sluid=name, mapped=job_id is not None)
    return None


def _tasks(step_dir: str, unified: bool) -> list[str]:
    where = os.path.join(step_dir, "user") if unified else step_dir
    return sorted(name for name in subdirs(where) if TASK_DIR.match(name))


def step_names(entries: list[str]) -> list[str]:
    """The step directories among a job directory's entries."""
    return [name for name in entries if name.startswith("step_") and STEP_DIR.match(name)]


def fill_job(
    job: FoundJob, job_dir: str, root: Path, relative: str | None, steps: list[str], tasks: bool
) -> None:
    """Fill in the job's location and its steps (and tasks, if asked)."""
    if relative is None:
        job.v2 = Path(job_dir)
    else:
        job.v1 = V1Paths(root, f"{relative}/{os.path.basename(job_dir)}")
    for step_name in steps:
        step = STEP_DIR.match(step_name)
        assert step is not None
        step_path = os.path.join(job_dir, step_name)
        if job.v1 is not None:
            job.steps[step.group(1)] = V1Paths(root, f"{job.v1.relative}/{step_name}")
        else:
            job.steps[step.group(1)] = Path(step_path)
        if tasks:
            job.tasks[step.group(1)] = _tasks(step_path, unified=relative is None)


def scan(
    root: Path, sluids: Mapping[str, str] | None = None, tasks: bool = False, node: str = ""
) -> dict[str, FoundJob]:
    """Every job cgroup of this node below ``root`` now, keyed by job id (by SLUID while unmapped); no
    memory kept."""
    sluids = sluids or {}
    jobs: dict[str, FoundJob] = {}
    for parent, relative in job_parents(root, is_unified(root), node=node):
        for name in names(parent):
            if not maybe_job(name):
                continue
            job = job_of(name, sluids)
            if job is None:
                continue
            job_dir = os.path.join(parent, name)
            fill_job(job, job_dir, root, relative, step_names(names(job_dir)), tasks)
            jobs[job.job_id] = job
    return jobs
