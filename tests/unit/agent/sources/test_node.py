"""Node metrics from psutil: what `once` and every batch carry about the machine itself."""

from __future__ import annotations

import os

import psutil
from jobpulse.agent.sources.node import NodeReading, NodeSource


def test_node_sample_matches_the_machine() -> None:
    sample = NodeSource().sample()
    assert isinstance(sample, NodeReading)  # a plain value: wire.py encodes it
    assert sample.mem_total_bytes == psutil.virtual_memory().total
    assert 0 < sample.mem_used_bytes <= sample.mem_total_bytes
    assert 0.0 <= sample.cpu_percent <= 100.0
    assert sample.load1 >= 0 and sample.swap_used_bytes >= 0
    assert sample.net_rx_bytes >= 0 and sample.disk_read_bytes >= 0
    mounts = {fs.mountpoint: fs for fs in sample.filesystems}
    assert "/" in mounts and mounts["/"].total_bytes == psutil.disk_usage("/").total
    assert not {fs.fstype for fs in sample.filesystems} & {"proc", "sysfs", "cgroup", "cgroup2", "tmpfs"}
    assert os.getloadavg()[0] >= 0
