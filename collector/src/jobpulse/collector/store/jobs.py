"""Job records: lifecycle events and job queries."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from jobpulse.collector.store.errors import BatchError
from jobpulse.proto.v1 import ingest_pb2 as pb


def parse_job_id(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise BatchError(f"job_id {value!r} is not a Slurm job number") from exc


def apply_event(db: sqlite3.Connection, node: str, cluster: str, event: pb.JobEvent) -> None:
    meta = event.meta
    job_id = parse_job_id(meta.job_id)
    cluster = meta.cluster or cluster
    now = time.time()
    if event.kind == pb.JobEvent.START:
        start = meta.start_time or event.time_ms // 1000
        db.execute(
            """INSERT INTO jobs (job_id, cluster, user_name, user_id, group_name, group_id, account, partition,
                 qos, job_name, num_nodes, num_tasks, cpus, gpus_per_node, mem_requested_bytes, nodes, nodelist,
                 start_time, is_running, state, source, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'RUNNING', ?, ?)
               ON CONFLICT(cluster, job_id, start_time) DO NOTHING""",
            (
                job_id,
                cluster,
                meta.user,
                meta.uid,
                meta.group,
                meta.gid,
                meta.account,
                meta.partition,
                meta.qos,
                meta.job_name,
                meta.num_nodes or None,
                meta.num_tasks or None,
                meta.cpus_on_node or None,
                len(meta.gpus),
                meta.mem_requested_bytes or None,
                json.dumps([node]),
                meta.nodelist or node,
                start,
                meta.source,
                now,
            ),
        )
    elif event.kind == pb.JobEvent.STOP:
        stop = meta.end_time or event.time_ms // 1000
        row = db.execute(
            "SELECT run_id FROM jobs WHERE cluster = ? AND job_id = ? ORDER BY start_time DESC LIMIT 1",
            (cluster, job_id),
        ).fetchone()
        if row is None:
            db.execute(
                """INSERT INTO jobs (job_id, cluster, nodes, nodelist, start_time, stop_time, is_running,
                     state, exit_code, source, updated) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)""",
                (
                    job_id,
                    cluster,
                    json.dumps([node]),
                    node,
                    meta.start_time or stop,
                    stop,
                    meta.state or "COMPLETED",
                    meta.exit_code,
                    meta.source,
                    now,
                ),
            )
        else:
            db.execute(
                """UPDATE jobs SET stop_time = ?, is_running = 0, state = ?, exit_code = ?, updated = ?
                   WHERE run_id = ? AND is_running = 1""",
                (stop, meta.state or "COMPLETED", meta.exit_code, now, row[0]),
            )


def list_jobs(
    db: sqlite3.Connection, user: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM jobs"
    params: list[Any] = []
    if user is not None:
        sql += " WHERE user_name = ?"
        params.append(user)
    sql += " ORDER BY start_time DESC, run_id DESC LIMIT ? OFFSET ?"
    params += [limit, offset]
    return [dict(r) for r in db.execute(sql, params)]


def get_job(db: sqlite3.Connection, job_id: int) -> dict[str, Any] | None:
    """The latest run of ``job_id`` (a requeued job has several)."""
    row = db.execute(
        "SELECT * FROM jobs WHERE job_id = ? ORDER BY start_time DESC, run_id DESC LIMIT 1", (job_id,)
    ).fetchone()
    return dict(row) if row else None
