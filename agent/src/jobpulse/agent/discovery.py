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
    # ((job id, step), location) of the job and each step, filled by the sampler on first use.
    read_keys: list[tuple[tuple[str, str], Path | V1Paths]] = field(default_factory=list)


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


def _names(path: Path | str) -> list[str]:
    """All entry names (os.listdir: no per-entry Python objects). Safe for job and step
    directories because no cgroup control file is named job_*, step_* or like a SLUID."""
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


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


# A job's steps are re-listed at least this often even when its link count did not change.
RESCAN_EVERY = 10


def _scan_job(job: FoundJob, job_dir: str, root: Path, relative: str | None, tasks: bool) -> None:
    """Fill in the job's location and its steps (and tasks, if asked)."""
    if relative is None:
        job.v2 = Path(job_dir)
    else:
        job.v1 = V1Paths(root, f"{relative}/{os.path.basename(job_dir)}")
    for step_name in _names(job_dir):
        step = STEP_DIR.match(step_name) if step_name.startswith("step_") else None
        if not step:
            continue
        step_path = os.path.join(job_dir, step_name)
        if job.v1 is not None:
            job.steps[step.group(1)] = V1Paths(root, f"{job.v1.relative}/{step_name}")
        else:
            job.steps[step.group(1)] = Path(step_path)
        if tasks:
            job.tasks[step.group(1)] = _tasks(step_path, unified=relative is None)


class Walker:
    """``discover`` with memory between ticks, so walking the tree every tick stays cheap.

    The job directories are listed every walk. A job's steps are re-listed only
    when the directory's link count (2 + its subdirectories: kernfs keeps it as
    ordinary filesystems do) or mtime changed, when ``invalidate`` was called
    (one of its steps vanished: a step that ends while another starts within
    one tick is thus seen one tick late), or every ``RESCAN_EVERY`` walks.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        # job dir -> ((link count, mtime), walk number of the last listing, job)
        self._cache: dict[str, tuple[tuple[int, int], int, FoundJob]] = {}
        self._walks = 0

    def invalidate(self, job_id: str) -> None:
        for key in [k for k, (_, _, job) in self._cache.items() if job.job_id == job_id]:
            del self._cache[key]

    def _parents(self) -> Iterator[tuple[Path, str | None]]:
        if is_unified(self.root):
            for parent in _v2_job_parents(self.root):
                yield parent, None
        else:
            yield from _v1_job_parents(self.root)

    def walk(self, sluids: Mapping[str, str] | None = None, tasks: bool = False) -> dict[str, FoundJob]:
        """All job cgroups below the root, keyed by job id (by SLUID while unmapped)."""
        sluids = sluids or {}
        self._walks += 1
        jobs: dict[str, FoundJob] = {}
        seen: set[str] = set()
        for parent, relative in self._parents():
            parent_dir = str(parent)
            for name in _names(parent_dir):
                if name[:4] != "job_" and (len(name) != 14 or name[0] != "s"):
                    continue  # the common case: a control file such as memory.stat
                job_dir = os.path.join(parent_dir, name)
                try:
                    st = os.stat(job_dir)
                except OSError:
                    continue  # ended just now
                cached = self._cache.get(job_dir)
                if (
                    cached is not None
                    and cached[0] == (st.st_nlink, st.st_mtime_ns)
                    and self._walks - cached[1] < RESCAN_EVERY
                    and cached[2].mapped
                    and not tasks
                ):
                    job = cached[2]
                else:
                    found = _job_of(name, sluids)
                    if found is None:
                        continue
                    job = found
                    _scan_job(job, job_dir, self.root, relative, tasks)
                    self._cache[job_dir] = ((st.st_nlink, st.st_mtime_ns), self._walks, job)
                seen.add(job_dir)
                jobs[job.job_id] = job
        if len(seen) != len(self._cache):
            for key in [k for k in self._cache if k not in seen]:
                del self._cache[key]
        return jobs


def discover(root: Path, sluids: Mapping[str, str] | None = None, tasks: bool = False) -> dict[str, FoundJob]:
    """All job cgroups below ``root``, keyed by job id (by SLUID while unmapped).

    ``sluids`` maps SLUID -> job id (from the prolog's state files and start
    events). ``tasks`` also lists each step's task directories (for ``once``;
    the tick does not need them).
    """
    return Walker(root).walk(sluids, tasks)
