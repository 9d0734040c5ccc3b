"""Create and remove a job cgroup for ``jobpulse-agent exec`` (root and a writable hierarchy only)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from jobpulse.agent.discovery import EXEC_ROOT, is_unified

log = logging.getLogger(__name__)

V1_CONTROLLERS = ("cpuacct", "memory", "cpuset", "pids", "blkio")


class JobCgroup:
    """The directories of one exec job; ``attach`` is meant for the child before it execs."""

    def __init__(self, root: Path, job_id: str) -> None:
        self.root = root
        self.job_id = job_id
        self.unified = is_unified(root)
        if self.unified:
            self.dirs = [root / EXEC_ROOT / f"job_{job_id}"]
        else:
            self.dirs = [
                root / c / EXEC_ROOT / f"job_{job_id}" for c in V1_CONTROLLERS if (root / c).is_dir()
            ]

    def create(self) -> None:
        """Raises OSError when the hierarchy is not writable (not root, read-only mount)."""
        if self.unified:
            parent = self.root / EXEC_ROOT
            parent.mkdir(exist_ok=True)
            wanted = set((self.root / "cgroup.controllers").read_text().split()) & {
                "cpu",
                "memory",
                "io",
                "pids",
                "cpuset",
            }
            for level in (self.root, parent):
                for ctrl in sorted(wanted):
                    try:
                        (level / "cgroup.subtree_control").write_text(f"+{ctrl}")
                    except OSError as exc:
                        log.debug("could not enable %s at %s: %s", ctrl, level, exc)
            self.dirs[0].mkdir(exist_ok=True)
            return
        if not self.dirs:
            raise OSError("no cgroup v1 controllers mounted")
        for directory in self.dirs:
            directory.parent.mkdir(exist_ok=True)
            if directory.parent.parent.name == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    if not (directory.parent / knob).read_text().strip():
                        (directory.parent / knob).write_text((directory.parent.parent / knob).read_text())
            directory.mkdir(exist_ok=True)
            if directory.parent.parent.name == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (directory / knob).write_text((directory.parent / knob).read_text())

    def attach(self, pid: int = 0) -> None:
        """Move ``pid`` (0 = the caller) into every controller's directory."""
        pid = pid or os.getpid()
        for directory in self.dirs:
            (directory / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        """Best effort: a directory with processes left in it stays and is reported."""
        for directory in self.dirs:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove cgroup %s: %s", directory, exc)
