"""Realistic job rows and samples written straight into a real store, for the API tests and bench."""

from __future__ import annotations

import json
import math
import sqlite3
import time

from jobpulse.collector.store.ingest import SERIES_MERGE
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS

_INSERT = (
    f"INSERT INTO job_samples (job_id, node, step, ts, {', '.join(JOB_SAMPLE_COLUMNS)}) "
    f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in JOB_SAMPLE_COLUMNS)})"
)


def add_job(
    db: sqlite3.Connection,
    job_id: int,
    user: str,
    *,
    start: int,
    stop: int | None,
    nodes: tuple[str, ...] = ("n1",),
    partition: str = "cpu",
    account: str = "proj",
    state: str | None = None,
    gpus: int = 0,
) -> int:
    """Insert a job run; returns its run_id."""
    cursor = db.execute(
        """INSERT INTO jobs (job_id, cluster, user_name, user_id, group_name, group_id, account, partition,
             job_name, num_nodes, num_tasks, cpus, gpus_per_node, nodes, nodelist, start_time, stop_time,
             is_running, state, exit_code, source, updated)
           VALUES (?, 'c1', ?, 1000, 'grp', 100, ?, ?, 'train', ?, 4, 8, ?, ?, ?, ?, ?, ?, ?, 0, 'test', ?)""",
        (
            job_id,
            user,
            account,
            partition,
            len(nodes),
            gpus,
            json.dumps(list(nodes)),
            ",".join(nodes),
            start,
            stop,
            int(stop is None),
            state or ("RUNNING" if stop is None else "COMPLETED"),
            time.time(),
        ),
    )
    return int(cursor.lastrowid or 0)


def sample_values(i: int, node_index: int) -> list[float]:
    """Deterministic, plausible values: cpu_cores ramps, memory grows, unlimited memory limit."""
    values = {c: float("nan") for c in JOB_SAMPLE_COLUMNS}
    values.update(
        cpu_user_seconds=i * 7.0,
        cpu_system_seconds=i * 1.0,
        cpu_cores=float(i % 8) + node_index,
        alloc_cpus=8.0,
        mem_current_bytes=1e9 + i * 1e6,
        mem_peak_bytes=1e9 + i * 1e6,
        mem_limit_bytes=math.inf,
        io_read_bytes=i * 1e5,
        io_write_bytes=i * 2e5,
        pids=4.0,
    )
    return [values[c] for c in JOB_SAMPLE_COLUMNS]


def add_samples(
    db: sqlite3.Connection, job_id: int, nodes: tuple[str, ...], start: int, count: int, tick: float = 10.0
) -> None:
    rows = [
        (job_id, node, "", int((start + i * tick) * 1000), *sample_values(i, k))
        for k, node in enumerate(nodes)
        for i in range(count)
    ]
    db.execute("BEGIN")
    db.executemany(_INSERT, rows)
    # keep the per-series ledger as the real ingest path does (rollups and series queries use it)
    if rows:  # every node has the same time stamps
        first, last = rows[0][3], rows[-1][3]
        db.executemany(
            "INSERT INTO job_series (job_id, node, step, raw_first_ms, last_ms, dirty_1m_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)" + SERIES_MERGE,
            [(job_id, node, "", first, last, first) for node in nodes],
        )
    db.execute("COMMIT")
