"""cgroup v1 reader: one job's directories across the cpuacct, memory, cpuset, blkio and pids hierarchies.

Like the v2 reader, ``V1Reader`` holds the files open between ticks; a
controller Slurm does not use on this node (often blkio and pids) is "not
measured", never 0.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from jobpulse.agent.sources.base import NAN, JobReading, NoData, Rates, Row, reading_of
from jobpulse.agent.sources.cgroupfs import (
    CgroupGone,
    FileSet,
    count_cpus,
    keyed_value,
    limit_of,
    number_value,
    read_text,
)
from jobpulse.common.timeutil import now_ms
from jobpulse.common.units import NS_PER_S

# The kernel reports "no limit" in v1 as the largest page-aligned signed 64-bit value.
V1_UNLIMITED = 9223372036854771712


@dataclass(frozen=True)
class V1Paths:
    """The same job's directory under each controller; the relative part is identical."""

    root: Path
    relative: str  # e.g. slurm_node1/uid_0/job_88

    def ctrl(self, controller: str) -> Path:
        return self.root / controller / self.relative


_BLKIO = re.compile(rb"^\S+ (Read|Write) (\d+)$", re.MULTILINE)
# The kernel prints memory.stat's hierarchical totals in this order, one after the other.
TOTALS = re.compile(rb"\ntotal_cache (\d+)\ntotal_rss (\d+)\n")


def parse_blkio(data: bytes | None) -> tuple[float, float]:
    """Read/Write byte totals from blkio.throttle.io_service_bytes ('MAJ:MIN Read N' lines)."""
    if data is None:
        return NAN, NAN
    read = write = 0.0
    for op, value in _BLKIO.findall(data):
        if op == b"Read":
            read += float(value)
        else:
            write += float(value)
    return read, write


def parse_memory_stat(data: bytes | None) -> tuple[float, float]:
    """(anon, file cache) bytes: the hierarchical totals, else the cgroup's own rss/cache."""
    if data is None:
        return NAN, NAN
    match = TOTALS.search(data)
    if match is not None:
        return float(match[2]), float(match[1])
    anon = keyed_value(data, b"total_rss ")
    cache = keyed_value(data, b"total_cache ")
    return (
        anon if anon == anon else keyed_value(data, b"rss "),
        cache if cache == cache else keyed_value(data, b"cache "),
    )


def split_usage(usage: float, ticks: bytes | None) -> tuple[float, float]:
    """(user, system) seconds: cpuacct.usage (exact, in seconds here) split by cpuacct.stat's proportion.

    cpuacct.stat counts coarse USER_HZ ticks (b"user 305\nsystem 42\n"); without ticks it is all user.
    """
    if usage != usage:  # NaN: not measured
        return NAN, NAN
    parts = ticks.split() if ticks else []
    user_t = float(parts[1]) if len(parts) >= 4 and parts[0] == b"user" else 0.0
    sys_t = float(parts[3]) if len(parts) >= 4 and parts[2] == b"system" else 0.0
    user = usage * (user_t / (user_t + sys_t) if user_t + sys_t > 0 else 1.0)
    return user, usage - user


def parse_oom_kills(data: bytes | None) -> float:
    """oom_kill from memory.oom_control (NaN without it: kernels before 4.13)."""
    if data is None:
        return NAN
    p = data.split(None, 6)  # b"oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
    return float(p[5]) if len(p) > 5 and p[4] == b"oom_kill" else keyed_value(data, b"oom_kill ")


def effective_limit(directory: str, memory_root: str, cache: dict[str, float]) -> float:
    """The tightest memory.limit_in_bytes of the cgroup and its ancestors; +inf if none is set."""
    limit = limit_of(directory, "memory.limit_in_bytes", memory_root, cache)
    return math.inf if limit >= V1_UNLIMITED else limit


def allocated_cpus(directory: str) -> float:
    cpus = read_text(os.path.join(directory, "cpuset.effective_cpus"))
    if cpus is None:
        cpus = read_text(os.path.join(directory, "cpuset.cpus"))
    return count_cpus(cpus)


class V1Reader(Rates):
    """One job (or step) across the v1 hierarchies, files held open between ticks.

    ``limits`` is the ancestors' memory limits shared by all ``Readers`` (see ``limit_of``).
    """

    __slots__ = ("_dirs", "_fresh", "_limits", "alloc", "files", "job_id", "limit", "paths", "step")

    def __init__(
        self,
        paths: V1Paths,
        job_id: str,
        step: str = "",
        keep: bool = True,
        limits: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.paths = paths
        self.job_id = job_id
        self.step = step
        cpuacct, memory = paths.ctrl("cpuacct"), paths.ctrl("memory")
        self.files = FileSet(
            {
                "usage": cpuacct / "cpuacct.usage",
                "ticks": cpuacct / "cpuacct.stat",
                "current": memory / "memory.usage_in_bytes",
                "peak": memory / "memory.max_usage_in_bytes",
                "stat": memory / "memory.stat",
                "oom": memory / "memory.oom_control",
                "blkio": paths.ctrl("blkio") / "blkio.throttle.io_service_bytes",
                "pids": paths.ctrl("pids") / "pids.current",
            },
            keep,
        )
        if self.files.kept and "usage" not in self.files.fds and "current" not in self.files.fds:
            self.files.close()
            raise NoData(f"cgroup {paths.relative} vanished")
        self._fresh = True
        self.alloc = NAN
        self.limit = NAN
        self._limits = {} if limits is None else limits
        # (cpuset dir, memory dir, memory root) as strings: refresh() makes no Path objects.
        self._dirs = (str(paths.ctrl("cpuset")), str(memory), str(paths.root / "memory"))

    def row(self, stamp: int, rates: bool = True) -> Row:
        """This tick's row: counters, rates against the last reading; limits read at the first read.

        ``Readers`` re-reads the limits (``refresh``) every STATIC_EVERY ticks.
        ``rates`` False: no cores used, memory.peak as the kernel says (NaN if it has none).

        cpuacct.stat is in USER_HZ ticks (coarse) while cpuacct.usage is exact in
        nanoseconds, so the total comes from cpuacct.usage and is split into
        user/system by the ticks' proportion. This is the agent's hot path (once
        per cgroup per tick): one pread per file, then only the keys reported.

        Raises:
            NoData: the job's cgroup is gone.
        """
        try:
            usage_b, ticks, current_b, peak_b, stat, oom, blkio, pids_b = self.files.read_all()
        except CgroupGone as exc:
            raise NoData(f"cgroup {self.paths.relative} vanished: {exc}") from exc
        if usage_b is None and current_b is None:
            raise NoData(f"cgroup {self.paths.relative} vanished")
        try:  # the kernel's usual output; anything else takes the careful path below
            usage = float(usage_b) / NS_PER_S if usage_b is not None else NAN
            current = float(current_b) if current_b is not None else NAN
            peak = float(peak_b) if peak_b is not None else NAN
            pids = float(pids_b) if pids_b is not None else NAN
        except ValueError:
            usage = number_value(usage_b) / NS_PER_S
            current, peak, pids = number_value(current_b), number_value(peak_b), number_value(pids_b)
        user, system = split_usage(usage, ticks)
        anon, cache = parse_memory_stat(stat)
        if self._fresh:  # later refreshes: every STATIC_EVERY ticks, by Readers (or a block)
            self._fresh = False
            self.refresh()
        if rates:
            cores, peak = self.derive(stamp, user + system, current, peak)
        else:
            cores = NAN
        read, write = parse_blkio(blkio)
        return (
            self.job_id,
            self.step,
            user,
            system,
            cores,
            self.alloc,
            current,
            peak,
            anon,
            cache,
            self.limit,
            parse_oom_kills(oom),
            read,
            write,
            pids,
            NAN,
            NAN,
            NAN,
        )

    def refresh(self) -> None:
        """Re-read what changes rarely (cpuset, limit); retry keeping the files open if that failed."""
        cpuset, memory, memory_root = self._dirs
        self.alloc = allocated_cpus(cpuset)
        self.limit = effective_limit(memory, memory_root, self._limits)
        if not self.files.kept:
            self.files.keep()

    def read(self) -> JobReading:
        """One reading as a ``JobReading``, stamped now: the kernel's figures alone, no rates.

        Raises:
            NoData: the job's cgroup is gone.
        """
        stamp = now_ms()
        return reading_of(self.row(stamp, rates=False), stamp)

    def close(self) -> None:
        self.files.close()


def read_job(paths: V1Paths, job_id: str, step: str = "") -> JobReading:
    """Read one job (or step) once. Raises NoData if its cgroup is gone."""
    reader = V1Reader(paths, job_id, step)
    try:
        return reader.read()
    finally:
        reader.close()
