"""Which job a process belongs to, from ``/proc/<pid>/cgroup``.

Used to cross-check GPU attribution: NVML lists the processes running on each
GPU, and the cgroup path of each process names its Slurm job (``job_<id>`` or,
from Slurm 26.05, a SLUID directory). Works for v2 (``0::/system.slice/
slurmstepd.scope/job_77/step_0/user/task_0``) and v1 (``4:memory:/slurm/uid_0/job_88/...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jobpulse.agent.discovery import EXEC_ROOT, JOB_DIR, SLUID_DIR


def job_of_cgroup_path(path: str, sluids: Mapping[str, str] | None = None) -> str | None:
    """The job id named by one cgroup path, or None if it is not inside a Slurm (or exec) job."""
    parts = path.strip().split("/")
    for index, part in enumerate(parts):
        if index == 0:
            continue
        parent = parts[index - 1]
        in_slurm = parent.endswith("slurmstepd.scope") or parent.startswith("uid_") or parent == EXEC_ROOT
        if not in_slurm:
            continue
        match = JOB_DIR.match(part)
        if match:
            return match.group(1)
        if SLUID_DIR.match(part):
            return (sluids or {}).get(part)
    return None


def job_of_pid(
    pid: int, proc_root: Path = Path("/proc"), sluids: Mapping[str, str] | None = None
) -> str | None:
    """The job of a running process; None when it is in no job or already gone."""
    try:
        text = (proc_root / str(pid) / "cgroup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Prefer the unified line, then any v1 controller line that names a job.
    lines = sorted(text.splitlines(), key=lambda line: not line.startswith("0::"))
    for line in lines:
        _, _, path = line.partition(":")
        _, _, path = path.partition(":")
        job = job_of_cgroup_path(path, sluids)
        if job is not None:
            return job
    return None
