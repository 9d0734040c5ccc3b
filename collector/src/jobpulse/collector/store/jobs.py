"""Job records: lifecycle events and job queries."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
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


# -- filtered job list (GET /api/jobs) ------------------------------------------------------------
SORT_COLUMNS: dict[str, str] = {
    "StartTime": "start_time",
    "StopTime": "COALESCE(stop_time, 1e18)",
    "Duration": "(COALESCE(stop_time, CAST(strftime('%s','now') AS INTEGER)) - start_time)",
    "Id": "job_id",
    "UserName": "user_name",
    "Account": "account",
    "Partition": "partition",
    "State": "state",
    "NumNodes": "num_nodes",
    "JobName": "job_name",
}
_DURATION = SORT_COLUMNS["Duration"]


@dataclass
class JobQuery:
    """Filters of the job list; None means "any". Ranges are inclusive (from, to), either end None."""

    user: str | None = None
    user_id: int | None = None
    group: str | None = None
    group_id: int | None = None
    account: str | None = None
    partition: str | None = None
    state: str | None = None
    node: str | None = None
    is_running: bool | None = None
    num_nodes: tuple[int | None, int | None] | None = None
    num_tasks: tuple[int | None, int | None] | None = None
    num_gpus: tuple[int | None, int | None] | None = None
    time: tuple[int | None, int | None] | None = None  # start time, epoch seconds
    duration: tuple[int | None, int | None] | None = None  # seconds
    tag_ids: list[int] = field(default_factory=list)  # every one must be present
    tag_names: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # tags of type "finding"
    sort: str = "StartTime"
    descending: bool = True
    limit: int = 100
    offset: int = 0


def _range(
    column: str, bounds: tuple[int | None, int | None] | None, where: list[str], params: list[Any]
) -> None:
    if bounds is None:
        return
    low, high = bounds
    if low is not None:
        where.append(f"{column} >= ?")
        params.append(low)
    if high is not None:
        where.append(f"{column} <= ?")
        params.append(high)


def query_jobs(db: sqlite3.Connection, q: JobQuery) -> tuple[list[dict[str, Any]], int]:
    """(one page of job rows, the number matching in all) for the filters of ``q``."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("user_name", q.user),
        ("user_id", q.user_id),
        ("group_name", q.group),
        ("group_id", q.group_id),
        ("account", q.account),
        ("partition", q.partition),
        ("state", q.state),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if q.is_running is not None:
        where.append("is_running = ?")
        params.append(int(q.is_running))
    if q.node is not None:
        where.append("EXISTS (SELECT 1 FROM json_each(jobs.nodes) WHERE json_each.value = ?)")
        params.append(q.node)
    _range("num_nodes", q.num_nodes, where, params)
    _range("num_tasks", q.num_tasks, where, params)
    _range("gpus_per_node", q.num_gpus, where, params)
    _range("start_time", q.time, where, params)
    _range(_DURATION, q.duration, where, params)
    for column, values, extra in (
        ("t.id", q.tag_ids, ""),
        ("t.name", q.tag_names, ""),
        ("t.name", q.findings, " AND t.type = 'finding'"),
    ):
        for value in values:
            where.append(
                "EXISTS (SELECT 1 FROM job_tags jt JOIN tags t ON t.id = jt.tag_id"
                f" WHERE jt.run_id = jobs.run_id AND {column} = ?{extra})"
            )
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = int(db.execute(f"SELECT count(*) FROM jobs{clause}", params).fetchone()[0])
    order = "DESC" if q.descending else "ASC"
    sql = (
        f"SELECT * FROM jobs{clause} ORDER BY {SORT_COLUMNS[q.sort]} {order}, run_id {order} LIMIT ? OFFSET ?"
    )
    rows = [dict(r) for r in db.execute(sql, [*params, q.limit, q.offset])]
    return rows, total


def users_with_jobs(db: sqlite3.Connection, contains: str, limit: int = 100) -> list[str]:
    """Usernames containing ``contains`` (case-insensitive) among users with at least one job."""
    escaped = contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = db.execute(
        "SELECT DISTINCT user_name FROM jobs WHERE user_name != '' AND user_name LIKE ? ESCAPE '\\'"
        " ORDER BY user_name LIMIT ?",
        (f"%{escaped}%", limit),
    )
    return [r[0] for r in rows]
