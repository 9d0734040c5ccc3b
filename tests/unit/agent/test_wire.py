"""The agent's wire module: plain readings from the sources become the protobuf the collector reads.

The sources never build protobuf (an import-linter contract); these tests hold the encoders to
carrying every value, and every field of the messages, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import astuple, fields

from jobpulse.agent.sources.node import FilesystemUsage, NodeReading, NodeSource
from jobpulse.agent.sources.nvml import GpuDeviceInfo
from jobpulse.agent.wire import encode_node, gpu_infos, node_sample
from jobpulse.proto.v1 import ingest_pb2 as pb

READING = NodeReading(
    time_ms=1_764_800_000_123,
    cpu_percent=37.5,
    mem_used_bytes=1.5e11,
    mem_total_bytes=2.0e12,
    swap_used_bytes=4096.0,
    load1=12.25,
    load5=11.5,
    load15=10.75,
    net_rx_bytes=9.0e12,
    net_tx_bytes=8.0e12,
    disk_read_bytes=7.0e11,
    disk_write_bytes=6.0e11,
    filesystems=[
        FilesystemUsage("/", "/dev/nvme0n1p2", "ext4", 1.9e12, 4.2e11),
        FilesystemUsage("/scratch", "beegfs_nodev", "beegfs", 4.0e15, 1.1e15),
    ],
)
SCALARS = [f.name for f in fields(NodeReading) if f.name != "filesystems"]


def test_plain_types_name_every_field_of_their_message() -> None:
    """A field added to the message (or the reading) without the other fails here, not on a node."""
    assert [f.name for f in fields(NodeReading)] == [f.name for f in pb.NodeSample.DESCRIPTOR.fields]
    assert list(FilesystemUsage._fields) == [f.name for f in pb.Filesystem.DESCRIPTOR.fields]
    assert {f.name for f in fields(GpuDeviceInfo)} == set(pb.GpuInfo.DESCRIPTOR.fields_by_name)


def test_node_reading_is_copied_field_for_field_into_the_batch() -> None:
    batch = pb.Batch()
    encode_node(READING, batch.node.add())
    decoded = pb.Batch.FromString(batch.SerializeToString()).node[0]
    assert [getattr(decoded, name) for name in SCALARS] == [getattr(READING, name) for name in SCALARS]
    assert [(f.mountpoint, f.device, f.fstype, f.total_bytes, f.used_bytes) for f in decoded.filesystems] == [
        tuple(f) for f in READING.filesystems
    ]
    assert node_sample(READING) == decoded


def test_a_node_without_disk_counters_sends_zero_as_before() -> None:
    reading = NodeReading(1, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0)
    sample = node_sample(reading)
    assert (sample.disk_read_bytes, sample.disk_write_bytes, len(sample.filesystems)) == (0.0, 0.0, 0)


def test_a_real_node_sample_encodes_to_the_same_values() -> None:
    reading = NodeSource().sample()
    sample = node_sample(reading)
    for name in SCALARS:
        value = getattr(reading, name)
        assert getattr(sample, name) == value or (math.isnan(value) and math.isnan(getattr(sample, name)))
    assert [f.mountpoint for f in sample.filesystems] == [f.mountpoint for f in reading.filesystems]


def test_gpu_infos_for_the_hello() -> None:
    devices = [
        GpuDeviceInfo("GPU-1", "NVIDIA H200", 143771 * 1024 * 1024, "00000000:19:00.0", 1),
        GpuDeviceInfo(
            "MIG-2", "NVIDIA H200 MIG 1g.18gb", 17920 * 1024 * 1024, "00000000:19:00.0", 1, "GPU-1"
        ),
    ]
    infos = gpu_infos(devices)
    assert all(isinstance(i, pb.GpuInfo) for i in infos)
    assert [(i.uuid, i.name, i.memory_total_bytes, i.pci_bus_id, i.index, i.parent_uuid) for i in infos] == [
        astuple(d) for d in devices
    ]
