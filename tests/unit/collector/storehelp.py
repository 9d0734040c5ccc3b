"""Helpers for storage tests: real SQLite files, batches built as an agent sends them."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from jobpulse.collector.findings import Thresholds
from jobpulse.collector.store import summaries
from jobpulse.collector.store.ingest import ingest_batch, record_hello
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS, migrate
from jobpulse.collector.store.packed import COLUMNS, PACKED, POS, WIDE, minutes, read_hours
from jobpulse.collector.store.sqlite import SqliteStore, connect
from jobpulse.collector.summary import JobSummary, build_summary
from jobpulse.proto.v1 import ingest_pb2 as pb

HOUR = 3_600_000
DAY = 86_400_000
T0 = 1_780_000_000_000 - 1_780_000_000_000 % DAY  # midnight, ms


T_ = TypeVar("T_")


def run_async(coro: Coroutine[Any, Any, T_]) -> T_:
    """``coro`` run to its end on an event loop of its own: for sync fixtures calling the store's async
    methods (a test's own loop, if any, is left alone)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def db_of(store: SqliteStore) -> sqlite3.Connection:
    """The store's own writer connection, for a test to seed rows (with store/ functions, the way the
    store would write them) or to inspect them, while the store is idle.

    The store keeps its connections private: only its named methods (store/base.py) run SQL in the
    collector. Tests reach them through this one helper, not through the store's internals one by one;
    a test that reads while the store works (a scheduler running) opens a connection of its own.
    """
    return store._writer_db()


def open_db(path: Path) -> sqlite3.Connection:
    db = connect(path)
    migrate(db)
    return db


def summarize(db: sqlite3.Connection, run_id: int, now: float, thresholds: Thresholds) -> JobSummary | None:
    """One run's summary computed and stored on ``db``: services/summaries.py's steps on one connection."""
    figures = summaries.run_figures(db, run_id, now)
    if figures is None:
        return None
    summary = build_summary(figures, thresholds)
    summaries.store_summary(db, run_id, now, summary.to_dict(), [f.rule for f in summary.findings])
    return summary


def minute_rows(db: sqlite3.Connection, job_id: int | None = None) -> list[dict[str, Any]]:
    """Every stored minute as the wide row it stands for (job_id, node, step, ts, n, ...), in key order.

    Minutes live in two tables (packed hours and wide rows, ``store/packed.py``): this reads both, through
    the product's own reader, so a test can assert on minutes wherever they are stored. None where not
    measured.
    """
    where, params = ("WHERE job_id = ?", (job_id,)) if job_id is not None else ("", ())
    out = []
    series = db.execute(
        f"SELECT DISTINCT job_id, node, step FROM {PACKED} {where}"
        f" UNION SELECT DISTINCT job_id, node, step FROM {WIDE} {where} ORDER BY 1, 2, 3",
        params * 2,
    ).fetchall()
    for jid, node, step in series:
        for hour, h in sorted(read_hours(db, jid, step, [node], COLUMNS, -POS, POS).get(node, {}).items()):
            for i, t in minutes(hour, h, -POS, POS):
                row: dict[str, Any] = {"job_id": jid, "node": node, "step": step, "ts": t}
                for c in COLUMNS:
                    v = h[c][i]
                    row[c] = int(v) if c == "n" else (None if v != v else v)
                out.append(row)
    return out


class Agent:
    """One node's stream: sequence numbers as a real agent would use them."""

    def __init__(self, db: sqlite3.Connection, node: str, gpus: Iterable[str] = ()) -> None:
        self.db, self.node, self.seq = db, node, 0
        hello = pb.Hello(node=node, stream_id=f"s-{node}", cluster="c")
        for i, uuid in enumerate(gpus):
            hello.gpus.add(uuid=uuid, name="A100", memory_total_bytes=80 << 30, index=i)
        record_hello(db, hello)

    def send(self, batch: pb.Batch) -> None:
        self.seq += 1
        batch.seq = self.seq
        ingest_batch(self.db, self.node, f"s-{self.node}", "c", batch)

    def samples(self, job_id: int, rows: Iterable[tuple[int, Mapping[str, float]]], step: str = "") -> None:
        """rows: (ts ms, {column: value}); columns not given are NaN (not measured)."""
        batch = pb.Batch()
        for ts, values in rows:
            batch.jobs.job_id.append(str(job_id))
            batch.jobs.step.append(step)
            batch.jobs.time_ms.append(ts)
            for c in JOB_SAMPLE_COLUMNS:
                getattr(batch.jobs, c).append(values.get(c, math.nan))
        self.send(batch)

    def gpu(self, uuid: str, job_id: int, rows: Iterable[tuple[int, float, float, float]]) -> None:
        """rows: (ts ms, util %, memory bytes, energy joules)."""
        batch = pb.Batch()
        for ts, util, mem, energy in rows:
            g = batch.gpus
            g.uuid.append(uuid)
            g.time_ms.append(ts)
            g.job_id.append(str(job_id))
            g.util_percent.append(util)
            g.mem_used_bytes.append(mem)
            g.mem_total_bytes.append(80 << 30)
            g.power_watts.append(100.0)
            g.temperature_c.append(50.0)
            g.sm_clock_mhz.append(1400.0)
            g.energy_joules.append(energy)
            g.mem_util_percent.append(util)
        self.send(batch)

    def event(self, kind: int, job_id: int, time_s: int, **meta: object) -> None:
        batch = pb.Batch()
        ev = batch.events.add(kind=kind, time_ms=time_s * 1000)  # type: ignore[arg-type]
        ev.meta.job_id = str(job_id)
        for key, value in meta.items():
            if key == "gpus":
                ev.meta.gpus.extend(value)  # type: ignore[arg-type]
            else:
                setattr(ev.meta, key, value)
        self.send(batch)
