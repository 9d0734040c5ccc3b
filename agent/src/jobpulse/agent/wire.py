"""Domain readings -> protobuf. Kept apart from transport (stream.py), as in opentelemetry's encoders.

The sources return plain values (tuples, dataclasses) and never import protobuf (an import-linter
contract); every message the agent sends about what it measured is built here.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from jobpulse.agent.sources.base import VALUE_FIELDS, JobReading, Row
from jobpulse.agent.sources.node import NodeReading
from jobpulse.agent.sources.nvml import GpuDeviceInfo, GpuReading
from jobpulse.proto.v1 import ingest_pb2 as pb


def encode_jobs(readings: Iterable[JobReading], out: pb.JobSamples) -> None:
    """Append readings to the columnar JobSamples message."""
    rows = list(readings)
    # One extend per column: appending value by value costs several times more.
    out.job_id.extend([r.job_id for r in rows])
    out.step.extend([r.step for r in rows])
    out.time_ms.extend([r.time_ms for r in rows])
    for name in VALUE_FIELDS:
        getter = attrgetter(name)
        getattr(out, name).extend([getter(r) for r in rows])


def encode_rows(rows: list[Row], time_ms: int, out: pb.JobSamples) -> None:
    """Append a tick's rows (one time for all) to the columnar JobSamples message.

    ``zip(*rows)`` turns the rows into columns in C; one ``extend`` per column.
    """
    if not rows:
        return
    columns = zip(*rows, strict=True)
    out.job_id.extend(next(columns))
    out.step.extend(next(columns))
    out.time_ms.extend([time_ms] * len(rows))
    for name, column in zip(VALUE_FIELDS, columns, strict=True):
        getattr(out, name).extend(column)


GPU_VALUE_FIELDS: tuple[str, ...] = (
    "util_percent",
    "mem_used_bytes",
    "mem_total_bytes",
    "power_watts",
    "temperature_c",
    "sm_clock_mhz",
    "energy_joules",
    "mem_util_percent",
)


def encode_gpus(readings: Iterable[GpuReading], out: pb.GpuSamples) -> None:
    """Append GPU rows to the columnar GpuSamples message."""
    rows = list(readings)
    out.uuid.extend([r.uuid for r in rows])
    out.time_ms.extend([r.time_ms for r in rows])
    out.job_id.extend([r.job_id for r in rows])
    for name in GPU_VALUE_FIELDS:
        getter = attrgetter(name)
        getattr(out, name).extend([getter(r) for r in rows])


def encode_node(reading: NodeReading, out: pb.NodeSample) -> None:
    """Fill a NodeSample (``batch.node.add()`` on the tick: built in place, not copied) from a reading.

    One assignment per field: as cheap as building the message in the source was.
    """
    r = reading
    out.time_ms = r.time_ms
    out.cpu_percent = r.cpu_percent
    out.mem_used_bytes = r.mem_used_bytes
    out.mem_total_bytes = r.mem_total_bytes
    out.swap_used_bytes = r.swap_used_bytes
    out.load1 = r.load1
    out.load5 = r.load5
    out.load15 = r.load15
    out.net_rx_bytes = r.net_rx_bytes
    out.net_tx_bytes = r.net_tx_bytes
    out.disk_read_bytes = r.disk_read_bytes
    out.disk_write_bytes = r.disk_write_bytes
    add = out.filesystems.add
    for fs in r.filesystems:
        add(
            mountpoint=fs.mountpoint,
            device=fs.device,
            fstype=fs.fstype,
            total_bytes=fs.total_bytes,
            used_bytes=fs.used_bytes,
        )


def node_sample(reading: NodeReading) -> pb.NodeSample:
    """A reading as a NodeSample of its own (``once``)."""
    sample = pb.NodeSample()
    encode_node(reading, sample)
    return sample


def gpu_infos(devices: Iterable[GpuDeviceInfo]) -> list[pb.GpuInfo]:
    """The hello's device list."""
    return [
        pb.GpuInfo(
            uuid=d.uuid,
            name=d.name,
            memory_total_bytes=d.memory_total_bytes,
            pci_bus_id=d.pci_bus_id,
            index=d.index,
            parent_uuid=d.parent_uuid,
        )
        for d in devices
    ]
