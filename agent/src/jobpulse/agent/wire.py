"""Domain readings -> protobuf. Kept apart from transport (stream.py), as in opentelemetry's encoders."""

from __future__ import annotations

from collections.abc import Iterable

from jobpulse.agent.sources.base import VALUE_FIELDS, JobReading
from jobpulse.agent.sources.nvml import GpuReading
from jobpulse.proto.v1 import ingest_pb2 as pb


def encode_jobs(readings: Iterable[JobReading], out: pb.JobSamples) -> None:
    """Append readings to the columnar JobSamples message."""
    columns = {name: getattr(out, name) for name in VALUE_FIELDS}
    for reading in readings:
        out.job_id.append(reading.job_id)
        out.step.append(reading.step)
        out.time_ms.append(reading.time_ms)
        for name, column in columns.items():
            column.append(getattr(reading, name))


def decode_jobs(samples: pb.JobSamples) -> list[JobReading]:
    """Inverse of encode_jobs; used by tests and `once`."""
    rows = []
    columns = [(name, getattr(samples, name)) for name in VALUE_FIELDS]
    for i, job_id in enumerate(samples.job_id):
        reading = JobReading(job_id=job_id, step=samples.step[i], time_ms=samples.time_ms[i])
        for name, column in columns:
            setattr(reading, name, column[i])
        rows.append(reading)
    return rows


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
    columns = {name: getattr(out, name) for name in GPU_VALUE_FIELDS}
    for reading in readings:
        out.uuid.append(reading.uuid)
        out.time_ms.append(reading.time_ms)
        out.job_id.append(reading.job_id)
        for name, column in columns.items():
            column.append(getattr(reading, name))
