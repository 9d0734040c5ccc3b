"""Job records: lifecycle events and job queries."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from jobpulse.collector.domain import hostnames
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.jobs import JobFacts, RunChange
from jobpulse.collector.domain.jobs import JobQuery as JobQuery  # the list filters (re-exported)
from jobpulse.collector.domain.runs import EDGE_SECONDS, START_EDGE, JobRun, RunScope
from jobpulse.collector.store import summaries
from jobpulse.collector.store.errors import BatchError
from jobpulse.collector.store.runrows import run_of as run_of
from jobpulse.common.validate import safe_for_log
from jobpulse.proto.v1 import ingest_pb2 as pb

if TYPE_CHECKING:
    from jobpulse.collector.slurm.parse import SlurmJob

MAX_JOB_ID = 2**63 - 1  # what an SQLite INTEGER holds (Slurm's own ids are 32-bit)


def parse_job_id(value: str) -> int:
    """A job id of the wire: ASCII digits only (``int()`` would take ``' 7'``, ``'1_2'``, ``'٣'``),
    within what an SQLite INTEGER holds."""
    if not (value.isascii() and value.isdigit()):
        raise BatchError(f"job_id {safe_for_log(value)} is not a Slurm job number")
    number = int(value) if len(value) <= 40 else MAX_JOB_ID + 1
    if number > MAX_JOB_ID:
        raise BatchError(f"job_id {safe_for_log(value)} is out of range")
    return number


# Metadata columns a start may fill in; a later start of the same run only fills blanks.
META_COLUMNS: tuple[str, ...] = (
    "user_name",
    "user_id",
    "group_name",
    "group_id",
    "account",
    "partition",
    "qos",
    "job_name",
    "num_nodes",
    "num_tasks",
    "tasks_per_node",
    "cpus",
    "gpus_per_node",
    "mem_requested_bytes",
    "nodes",
    "nodelist",
    "array_job_id",
    "array_task_id",
    "het_job_id",
    "het_job_offset",
    "job_script",
)
# Who the job belongs to: an authoritative source replaces these together, so a record never mixes
# one source's UserName with another's UserId.
IDENTITY_COLUMNS: tuple[str, ...] = ("user_name", "user_id", "group_name", "group_id")
# Sources whose word on identity is final: Slurm itself (reconciler, admin refresh) and the REST start
# that slurmctld's PrologSlurmctld sends. Agent events (prolog, epilog, exec) only fill blanks.
AUTHORITATIVE_SOURCES = frozenset({"api", "reconciler", "refresh"})


# Columns where 0 is a value like any other: array task 0 (``--array=0-3``), het component 0 (``5+0``).
_ZERO_IS_A_VALUE = frozenset({"array_task_id", "het_job_offset"})


def _blank(value: Any, column: str = "") -> bool:
    if column in _ZERO_IS_A_VALUE:
        return value is None
    return value is None or value == "" or value == "[]" or value == 0


def _fill(row: sqlite3.Row, fields: dict[str, Any], source: str) -> dict[str, Any]:
    """The column updates that ``fields`` from ``source`` make to a known run.

    Metadata fills blanks only (the first source to know a value wins), except: the node list is the
    union of every source's (a multi-node job is reported by each of its nodes), and an authoritative
    source replaces the identity as a whole.
    """
    updates = {
        c: fields[c]
        for c in META_COLUMNS
        if c not in ("nodes", "nodelist") and c in fields and not _blank(fields[c], c) and _blank(row[c], c)
    }
    new_nodes = json.loads(fields["nodes"]) if fields.get("nodes") else []
    if new_nodes:
        known = json.loads(row["nodes"] or "[]")
        merged = hostnames.sort([*known, *new_nodes])
        if merged != known:
            updates["nodes"] = json.dumps(merged)
            updates["nodelist"] = hostnames.compress(merged)
            if (row["num_nodes"] or 0) < len(merged):
                updates["num_nodes"] = len(merged)
    if source in AUTHORITATIVE_SOURCES and any(not _blank(fields.get(c)) for c in IDENTITY_COLUMNS):
        identity = {
            c: fields.get(c) if fields.get(c) is not None else _EMPTY.get(c) for c in IDENTITY_COLUMNS
        }
        if any(row[c] != v for c, v in identity.items()):
            updates.update(identity)
    return updates


_EMPTY: dict[str, Any] = {"user_name": "", "group_name": ""}


def columns(facts: JobFacts) -> dict[str, Any]:
    """The one mapping from what a source says to ``jobs`` columns (None: the source did not say)."""

    def count(value: int | None) -> int | None:
        return value or None

    return {
        "user_name": facts.user_name,
        "user_id": facts.user_id,
        "group_name": facts.group_name,
        "group_id": facts.group_id,
        "account": facts.account,
        "partition": facts.partition,
        "qos": facts.qos,
        "job_name": facts.job_name,
        "num_nodes": count(facts.num_nodes),
        "num_tasks": count(facts.num_tasks),
        "tasks_per_node": count(facts.tasks_per_node),
        "cpus": count(facts.cpus),
        "gpus_per_node": facts.gpus_per_node,
        "mem_requested_bytes": count(facts.mem_requested_bytes),
        "array_job_id": facts.array_job_id,
        "array_task_id": facts.array_task_id,
        "het_job_id": facts.het_job_id,
        "het_job_offset": facts.het_job_offset,
        "job_script": facts.job_script or None,
        **node_fields(list(facts.nodes)),
    }


def _columns(fields: JobFacts | dict[str, Any] | None) -> dict[str, Any]:
    """Sources hand JobFacts; tests and old callers may still pass columns directly."""
    if isinstance(fields, JobFacts):
        return columns(fields)
    return fields or {}


def node_fields(names: list[str]) -> dict[str, Any]:
    """The ``nodes``/``nodelist`` columns for hostlist expressions or names (expanded, unioned)."""
    expanded = hostnames.expand_all(names)
    return {"nodes": json.dumps(expanded), "nodelist": hostnames.compress(expanded)} if expanded else {}


def _latest_run(
    db: sqlite3.Connection, cluster: str | None, job_id: int, before: int | None = None
) -> sqlite3.Row | None:
    """The newest run of a job (a requeued job has several) that started by ``before``; any cluster
    when ``cluster`` is None."""
    sql = "SELECT * FROM jobs WHERE job_id = ?"
    params: list[Any] = [job_id]
    if before is not None:
        sql += " AND start_time <= ?"
        params.append(before)
    if cluster is not None:
        sql += " AND cluster = ?"
        params.append(cluster)
    row: sqlite3.Row | None = db.execute(
        sql + " ORDER BY start_time DESC, run_id DESC LIMIT 1", params
    ).fetchone()
    return row


def record_start(
    db: sqlite3.Connection,
    cluster: str | None,
    job_id: int,
    start: int,
    facts: JobFacts | dict[str, Any],
    source: str,
) -> int:
    """Record that a run of ``job_id`` started at ``start``; returns its run_id.

    Idempotent: a start for a run we already know (the newest run is still running, or it ended at or
    after ``start`` -- the stop arrived first) only fills in metadata that run lacks. A start after the
    newest run ended is a requeue: a new run, the old one is left as it was. ``cluster`` None (a
    caller that does not know it) matches the job in any cluster.
    """
    now = time.time()
    fields = _columns(facts)
    row = _latest_run(db, cluster, job_id)
    if row is None and cluster:
        row = _latest_run(db, "", job_id)  # created by a caller that did not know the cluster
    if row is not None and (row["is_running"] or (row["stop_time"] or 0) >= start):
        updates = _fill(row, fields, source)
        if cluster and not row["cluster"]:
            updates["cluster"] = cluster
        guessed = row["stop_time"] is not None and row["start_time"] == row["stop_time"]
        if guessed and not row["is_running"] and start < row["start_time"]:
            updates["start_time"] = start  # the stop came first and had to guess the start
        if updates:
            assignments = ", ".join(f"{c} = ?" for c in updates)
            db.execute(
                f"UPDATE jobs SET {assignments}, updated = ? WHERE run_id = ?",
                [*updates.values(), now, row["run_id"]],
            )
        return int(row["run_id"])
    columns = [c for c in META_COLUMNS if fields.get(c) is not None]
    values = [fields[c] for c in columns]
    cursor = db.execute(
        f"""INSERT INTO jobs (job_id, cluster, start_time, is_running, state, source, updated
              {"".join(", " + c for c in columns)})
            VALUES (?, ?, ?, 1, 'RUNNING', ?, ?{", ?" * len(columns)})
            ON CONFLICT(cluster, job_id, start_time) DO NOTHING""",
        [job_id, cluster or "", start, source, now, *values],
    )
    if cursor.rowcount:
        return int(cursor.lastrowid or 0)
    existing = _latest_run(db, cluster, job_id)
    return int(existing["run_id"]) if existing is not None else 0


def settle_run(
    db: sqlite3.Connection,
    run_id: int,
    state: str,
    exit_code: int | None,
    exit_signal: int | None = None,
    end: int | None = None,
) -> None:
    """Correct an ended run from Slurm's records; no-op when they agree.

    Slurm's state wins; its exit code (with its signal) only when it says more than "0" (22.05's
    sacct --json reports 0 for a failed job, and the epilog of a cancelled job 0:0); its signal also
    where no source said one. Slurm's end time replaces the epilog's clock (which runs after the job's
    processes are gone and its cgroup removed: about 2 s after Slurm's End on a cancelled job)."""
    row = db.execute(
        "SELECT state, exit_code, exit_signal, is_running, start_time, stop_time FROM jobs WHERE run_id = ?",
        (run_id,),
    ).fetchone()
    if row is None or row["is_running"] or not state:
        return
    code, signal = row["exit_code"], row["exit_signal"]
    if exit_code:
        code, signal = exit_code, exit_signal if exit_signal is not None else signal
    elif signal is None and exit_signal is not None:
        signal = exit_signal
    stop = max(end, row["start_time"]) if end else row["stop_time"]
    if (row["state"], row["exit_code"], row["exit_signal"], row["stop_time"]) != (state, code, signal, stop):
        db.execute(
            "UPDATE jobs SET state = ?, exit_code = ?, exit_signal = ?, stop_time = ?, updated = ?"
            " WHERE run_id = ?",
            (state, code, signal, stop, time.time(), run_id),
        )


def refresh_run(
    db: sqlite3.Connection,
    run_id: int,
    facts: JobFacts | dict[str, Any],
    state: str | None = None,
    exit_code: int | None = None,
    stop: int | None = None,
    exit_signal: int | None = None,
) -> None:
    """Overwrite a run's metadata (and end, when given) with what Slurm itself says (admin refresh)."""
    fields = _columns(facts)
    updates = {c: fields[c] for c in META_COLUMNS if c in fields and not _blank(fields[c], c)}
    if state is not None and stop is not None:
        updates.update(
            state=state, exit_code=exit_code, exit_signal=exit_signal, stop_time=stop, is_running=0
        )
    if updates:
        assignments = ", ".join(f"{c} = ?" for c in updates)
        db.execute(
            f"UPDATE jobs SET {assignments}, updated = ? WHERE run_id = ?",
            [*updates.values(), time.time(), run_id],
        )


def record_stop(
    db: sqlite3.Connection,
    cluster: str | None,
    job_id: int,
    stop: int,
    state: str,
    exit_code: int | None,
    source: str,
    start: int = 0,
    facts: JobFacts | dict[str, Any] | None = None,
    exit_signal: int | None = None,
) -> int:
    """Record that the newest run of ``job_id`` ended; returns its run_id. ``exit_signal``: the signal of
    Slurm's "code:signal" where the source knows it (``exit_code`` is then 128 + it, but for 125).

    A duplicate stop changes nothing. A stop for a job never seen creates the record (its start is
    ``start`` when known, else the stop time, until a late start corrects it). A stop with a known
    start after the newest run ended belongs to a requeued run whose start was missed: a new run.
    """
    now = time.time()
    fields = _columns(facts)
    row = _latest_run(db, cluster, job_id, before=stop)
    if row is None and cluster:
        row = _latest_run(db, "", job_id, before=stop)  # started by a caller that did not know the cluster
    if row is not None and row["is_running"]:
        updates = _fill(row, fields, source)
        updates.update(
            stop_time=max(stop, row["start_time"]),
            is_running=0,
            state=state,
            exit_code=exit_code,
            exit_signal=exit_signal,
        )
        assignments = ", ".join(f"{c} = ?" for c in updates)
        db.execute(
            f"UPDATE jobs SET {assignments}, updated = ? WHERE run_id = ?",
            [*updates.values(), now, row["run_id"]],
        )
        return int(row["run_id"])
    if row is not None and not (start and start > (row["stop_time"] or 0)):
        return int(row["run_id"])  # already stopped: a duplicate
    columns = [c for c in META_COLUMNS if fields.get(c) is not None]
    cursor = db.execute(
        f"""INSERT INTO jobs (job_id, cluster, start_time, stop_time, is_running, state, exit_code,
              exit_signal, source, updated{"".join(", " + c for c in columns)})
            VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?{", ?" * len(columns)})
            ON CONFLICT(cluster, job_id, start_time) DO NOTHING""",
        [job_id, cluster or "", min(start or stop, stop), stop, state, exit_code, exit_signal, source, now]
        + [fields[c] for c in columns],
    )
    return int(cursor.lastrowid or 0)


# Where each source keeps the facts it reports: JobFacts field -> the source's attribute. The facts a
# source does not report (an agent's event knows no array task; Slurm's records no GPU count) are absent.
_COMMON = ("account", "partition", "qos", "num_nodes", "mem_requested_bytes")
_AGENT_EVENT: dict[str, str] = {
    **{f: f for f in _COMMON},
    "user_name": "user",
    "group_name": "group",
    "job_name": "job_name",
    "num_tasks": "num_tasks",
    "cpus": "cpus_on_node",
}
_SLURM_RECORD: dict[str, str] = {
    **{f: f for f in _COMMON},
    "user_name": "user",
    "user_id": "uid",
    "group_name": "group",
    "group_id": "gid",
    "job_name": "name",
    "num_tasks": "tasks",
    "cpus": "cpus",
    **{f: f for f in ("array_job_id", "array_task_id", "het_job_id", "het_job_offset")},
}


def _facts(source: object, names: dict[str, str], **derived: Any) -> JobFacts:
    """JobFacts from one source's record: each field read from its attribute in ``names``, then the
    values a source reports in another form (``derived``: nodes, counts, ids that 0 means unknown)."""
    return JobFacts(**{field: getattr(source, attribute) for field, attribute in names.items()}, **derived)


def _meta_facts(meta: pb.JobMeta, node: str) -> JobFacts:
    """An agent's job event as JobFacts: the reporting node plus the hook's hostlist; a uid or gid of 0
    counts only when the name is given too (protobuf's 0 is also "not set")."""
    return _facts(
        meta,
        _AGENT_EVENT,
        user_id=meta.uid if meta.user or meta.uid else None,
        group_id=meta.gid if meta.group or meta.gid else None,
        nodes=(node, meta.nodelist),
        gpus_per_node=len(meta.gpus),
        # the prolog knows the het job; the offset only for component 0 (the others': squeue/sacct)
        het_job_id=meta.het_job_id if meta.HasField("het_job_id") else None,
        het_job_offset=meta.het_job_offset
        if meta.HasField("het_job_id") and meta.HasField("het_job_offset")
        else None,
    )


def slurm_facts(job: SlurmJob) -> JobFacts:
    """What Slurm's CLI says about a job, as JobFacts."""
    return _facts(job, _SLURM_RECORD, nodes=(job.nodelist,) if job.nodelist else ())


def apply_event(db: sqlite3.Connection, node: str, cluster: str, event: pb.JobEvent) -> None:
    meta = event.meta
    job_id = parse_job_id(meta.job_id)
    cluster = meta.cluster or cluster
    if event.kind == pb.JobEvent.START:
        start = meta.start_time or event.time_ms // 1000
        record_start(db, cluster, job_id, start, _meta_facts(meta, node), meta.source)
    elif event.kind == pb.JobEvent.STOP:
        stop = meta.end_time or event.time_ms // 1000
        run = record_stop(
            db,
            cluster,
            job_id,
            stop,
            meta.state or "COMPLETED",
            meta.exit_code,
            meta.source,
            start=meta.start_time,
            facts=_meta_facts(meta, node),
            exit_signal=meta.exit_signal if meta.HasField("exit_signal") else None,
        )
        # this node's last readings of the job came with this event: a summary made before it is early
        summaries.drop_early_summary(db, run)


def apply_slurm_job(db: sqlite3.Connection, job: SlurmJob, source: str, overwrite: bool = False) -> RunChange:
    """Record what Slurm says about ``job``: its run (created if missed), its metadata, its end if it ended.

    The reconciler only fills gaps (``overwrite`` False); an admin refresh makes Slurm's word final.
    Returns what that did to the run (created: no source had reported it; ended: it was running). The
    caller holds the transaction.
    """
    facts = slurm_facts(job)
    cluster = job.cluster or None
    start = job.start or int(time.time())
    newest = db.execute("SELECT coalesce(max(run_id), 0) FROM jobs").fetchone()[0]  # runs are never deleted
    run = record_start(db, cluster, job.job_id, start, facts, source)
    before = db.execute("SELECT is_running FROM jobs WHERE run_id = ?", (run,)).fetchone()
    if job.ended:
        end = job.end or start
        record_stop(
            db,
            cluster,
            job.job_id,
            end,
            job.state,
            job.exit_code,
            source,
            start=start,
            exit_signal=job.exit_signal,
        )
        if overwrite:
            refresh_run(db, run, facts, job.state, job.exit_code, end, exit_signal=job.exit_signal)
        else:
            # The epilog cannot tell a cancelled job from a finished one (22.05 gives it exit 0:0):
            # Slurm's state and end time win; its exit code only when it says more than "0".
            settle_run(db, run, job.state, job.exit_code, job.exit_signal, job.end)
    elif overwrite:
        refresh_run(db, run, facts)
    row = db.execute("SELECT * FROM jobs WHERE run_id = ?", (run,)).fetchone()
    if row is None or before is None:
        return RunChange(None)
    return RunChange(run_of(row), created=run > newest, ended=bool(before[0]) and not row["is_running"])


def list_jobs(
    db: sqlite3.Connection, user: str | None = None, limit: int = 100, offset: int = 0
) -> list[JobRun]:
    sql = "SELECT * FROM jobs"
    params: list[Any] = []
    if user is not None:
        sql += " WHERE user_name = ?"
        params.append(user)
    sql += " ORDER BY start_time DESC, run_id DESC LIMIT ? OFFSET ?"
    params += [limit, offset]
    return [run_of(r) for r in db.execute(sql, params)]


def get_job(db: sqlite3.Connection, job_id: int | JobId) -> JobRun | None:
    """The latest run (a requeued job has several) of a job number, array task or het component."""
    ident = job_id if isinstance(job_id, JobId) else JobId(job_id)
    params: tuple[int, ...]
    if ident.array_task is not None:
        where, params = "array_job_id = ? AND array_task_id = ?", (ident.job, ident.array_task)
    elif ident.het_offset is not None:
        where, params = "het_job_id = ? AND het_job_offset = ?", (ident.job, ident.het_offset)
    else:
        where, params = "job_id = ?", (ident.job,)
    row = db.execute(
        f"SELECT * FROM jobs WHERE {where} ORDER BY start_time DESC, run_id DESC LIMIT 1", params
    ).fetchone()
    return run_of(row) if row else None


def run_scope(db: sqlite3.Connection, run: JobRun) -> RunScope:
    """The samples that belong to ``run``: its window (up to the next run of the same job number in
    its cluster, if one started) and the nodes that sent samples for it, less those of other clusters."""
    start, stop = int(run.start_time), run.stop_time
    end = None if run.is_running or stop is None else int(stop) + EDGE_SECONDS
    later = db.execute(
        "SELECT min(start_time) FROM jobs WHERE job_id = ? AND cluster = ? AND start_time > ?",
        (run.job_id, run.cluster, start),
    ).fetchone()[0]
    if later is not None:
        end = min(end, int(later)) if end is not None else int(later)
    sql = "SELECT DISTINCT s.node FROM job_series s"
    params: list[Any] = [run.job_id]
    if run.cluster:
        # a node of another cluster never belongs to this run; a node that named no cluster may
        sql += (
            " LEFT JOIN nodes n ON n.name = s.node WHERE s.job_id = ? AND coalesce(n.cluster, '') IN ('', ?)"
        )
        params.append(run.cluster)
    else:
        sql += " WHERE s.job_id = ?"
    nodes = hostnames.sort(r[0] for r in db.execute(sql, params))
    return RunScope(int(run.job_id), (start - START_EDGE) * 1000, end * 1000 if end else None, nodes)


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


def query_jobs(db: sqlite3.Connection, q: JobQuery) -> tuple[list[JobRun], int]:
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
        ("array_job_id", q.array_job_id),
        ("het_job_id", q.het_job_id),
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
    # An unknown count (NULL: no source said) is 0, as in JobMon, whose page always asks for
    # NumGpus=0,224&NumNodes=1,192: a job without GPUs must not drop out of its list, nor one whose
    # node count no source said (it has at least the nodes that reported it).
    _range("max(coalesce(num_nodes, 0), json_array_length(nodes))", q.num_nodes, where, params)
    _range("coalesce(num_tasks, 0)", q.num_tasks, where, params)
    _range("coalesce(gpus_per_node, 0)", q.num_gpus, where, params)
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
    rows = [run_of(r) for r in db.execute(sql, [*params, q.limit, q.offset])]
    return rows, total


def like_pattern(contains: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) matching text that contains ``contains`` literally."""
    escaped = contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def users_with_jobs(db: sqlite3.Connection, contains: str, limit: int = 100) -> list[str]:
    """Usernames containing ``contains`` (case-insensitive) among users with at least one job."""
    rows = db.execute(
        "SELECT DISTINCT user_name FROM jobs WHERE user_name != '' AND user_name LIKE ? ESCAPE '\\'"
        " ORDER BY user_name LIMIT ?",
        (like_pattern(contains), limit),
    )
    return [r[0] for r in rows]


def search_jobs(db: sqlite3.Connection, contains: str, user: str | None, limit: int = 100) -> list[JobRun]:
    """The newest runs (at most ``limit``) whose job number, user, job name or account contains
    ``contains`` (case-insensitive), of ``user`` only when given."""
    pattern = like_pattern(contains)
    sql = (
        "SELECT * FROM jobs WHERE (CAST(job_id AS TEXT) LIKE ?1 ESCAPE '\\' OR user_name LIKE ?1 ESCAPE '\\'"
        " OR job_name LIKE ?1 ESCAPE '\\' OR account LIKE ?1 ESCAPE '\\')"
    )
    params: list[Any] = [pattern]
    if user is not None:
        sql += " AND user_name = ?2"
        params.append(user)
    sql += f" ORDER BY start_time DESC, run_id DESC LIMIT {int(limit)}"
    return [run_of(r) for r in db.execute(sql, params)]
