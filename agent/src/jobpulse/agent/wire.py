"""Domain readings -> protobuf. Kept apart from transport (stream.py), as in opentelemetry's encoders."""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from jobpulse.agent.sources.base import VALUE_FIELDS, JobReading, Row
from jobpulse.agent.sources.nvml import GpuReading
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
