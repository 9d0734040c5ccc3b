"""Node-wide metrics from psutil: CPU, memory, swap, load, disks, network, filesystems.

Plain values: ``wire.encode_node`` copies a ``NodeReading`` into the Batch's
``NodeSample`` (its fields have the message's names, one to one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

import psutil
from jobpulse.common.timeutil import now_ms

# Pseudo filesystems say nothing about storage a job can fill.
_SKIP_FSTYPES = frozenset(
    {
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "devtmpfs",
        "tmpfs",
        "overlay",
        "squashfs",
        "mqueue",
        "debugfs",
        "tracefs",
        "securityfs",
        "pstore",
        "bpf",
        "autofs",
        "configfs",
        "fusectl",
        "hugetlbfs",
        "binfmt_misc",
        "nsfs",
        "rpc_pipefs",
        "efivarfs",
    }
)


class FilesystemUsage(NamedTuple):
    """One mounted filesystem's size and use, in bytes."""

    mountpoint: str
    device: str
    fstype: str
    total_bytes: float
    used_bytes: float


@dataclass(slots=True)
class NodeReading:
    """The node at one instant. Network and disk counters are cumulative since boot.

    The disk counters stay 0 where psutil has none (a container without
    /proc/diskstats), as the wire has always carried them.
    """

    time_ms: int
    cpu_percent: float
    mem_used_bytes: float
    mem_total_bytes: float
    swap_used_bytes: float
    load1: float
    load5: float
    load15: float
    net_rx_bytes: float = 0.0
    net_tx_bytes: float = 0.0
    disk_read_bytes: float = 0.0
    disk_write_bytes: float = 0.0
    filesystems: list[FilesystemUsage] = field(default_factory=list)


class NodeSource:
    """Samples the node. The first cpu_percent call primes psutil's counter."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)

    def sample(self, with_filesystems: bool = True) -> NodeReading:
        mem = psutil.virtual_memory()
        swap = psutil.swap_memory()
        load1, load5, load15 = os.getloadavg()
        sample = NodeReading(
            time_ms=now_ms(),
            cpu_percent=psutil.cpu_percent(interval=None),
            mem_used_bytes=float(mem.total - mem.available),
            mem_total_bytes=float(mem.total),
            swap_used_bytes=float(swap.used),
            load1=load1,
            load5=load5,
            load15=load15,
        )
        net = psutil.net_io_counters(pernic=True)
        sample.net_rx_bytes = float(sum(v.bytes_recv for k, v in net.items() if k != "lo"))
        sample.net_tx_bytes = float(sum(v.bytes_sent for k, v in net.items() if k != "lo"))
        disk = psutil.disk_io_counters()
        if disk is not None:
            sample.disk_read_bytes = float(disk.read_bytes)
            sample.disk_write_bytes = float(disk.write_bytes)
        if with_filesystems:
            for part in psutil.disk_partitions(all=False):
                if part.fstype in _SKIP_FSTYPES:
                    continue
                try:
                    usage = psutil.disk_usage(part.mountpoint)
                except OSError:
                    continue
                sample.filesystems.append(
                    FilesystemUsage(
                        part.mountpoint, part.device, part.fstype, float(usage.total), float(usage.used)
                    )
                )
        return sample
