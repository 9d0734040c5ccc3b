"""Versioned schema migrations, applied in order at start; PRAGMA user_version records the version.

Never edit a released migration: add a new one. Each must take a database at
the previous version to the next, and tests apply them from every version.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

# Value columns of a job sample, in wire order (see proto JobSamples).
JOB_SAMPLE_COLUMNS: tuple[str, ...] = (
    "cpu_user_seconds",
    "cpu_system_seconds",
    "cpu_cores",
    "alloc_cpus",
    "mem_current_bytes",
    "mem_peak_bytes",
    "mem_anon_bytes",
    "mem_file_bytes",
    "mem_limit_bytes",
    "oom_kills",
    "io_read_bytes",
    "io_write_bytes",
    "pids",
    "gpu_util_percent",
    "gpu_mem_bytes",
    "gpu_power_watts",
)

NODE_SAMPLE_COLUMNS: tuple[str, ...] = (
    "cpu_percent",
    "mem_used_bytes",
    "mem_total_bytes",
    "swap_used_bytes",
    "load1",
    "load5",
    "load15",
    "net_rx_bytes",
    "net_tx_bytes",
    "disk_read_bytes",
    "disk_write_bytes",
)

GPU_SAMPLE_COLUMNS: tuple[str, ...] = (
    "util_percent",
    "mem_used_bytes",
    "mem_total_bytes",
    "power_watts",
    "temperature_c",
    "sm_clock_mhz",
    "energy_joules",
    "mem_util_percent",
)


def _script(db: sqlite3.Connection, script: str) -> None:
    """Run DDL statement by statement: executescript would COMMIT the migration's transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    job_cols = ", ".join(f"{c} REAL" for c in JOB_SAMPLE_COLUMNS)
    node_cols = ", ".join(f"{c} REAL" for c in NODE_SAMPLE_COLUMNS)
    gpu_cols = ", ".join(f"{c} REAL" for c in GPU_SAMPLE_COLUMNS)
    _script(
        db,
        f"""
        CREATE TABLE nodes (
            name TEXT PRIMARY KEY, cluster TEXT NOT NULL DEFAULT '', agent_version TEXT, cpus INTEGER,
            memory_bytes INTEGER, gpus TEXT NOT NULL DEFAULT '[]', boot_time INTEGER,
            first_seen REAL NOT NULL, last_seen REAL NOT NULL
        );
        CREATE TABLE agent_streams (
            node TEXT NOT NULL, stream_id TEXT NOT NULL, last_seq INTEGER NOT NULL, updated REAL NOT NULL,
            PRIMARY KEY (node, stream_id)
        ) WITHOUT ROWID;
        CREATE TABLE jobs (
            run_id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL,
            cluster TEXT NOT NULL DEFAULT '',
            user_name TEXT NOT NULL DEFAULT '', user_id INTEGER, group_name TEXT NOT NULL DEFAULT '',
            group_id INTEGER, account TEXT NOT NULL DEFAULT '', partition TEXT NOT NULL DEFAULT '',
            qos TEXT NOT NULL DEFAULT '', job_name TEXT NOT NULL DEFAULT '',
            num_nodes INTEGER, num_tasks INTEGER, cpus INTEGER, gpus_per_node INTEGER,
            mem_requested_bytes INTEGER, nodes TEXT NOT NULL DEFAULT '[]', nodelist TEXT NOT NULL DEFAULT '',
            start_time INTEGER NOT NULL, stop_time INTEGER, is_running INTEGER NOT NULL DEFAULT 1,
            state TEXT NOT NULL DEFAULT 'RUNNING', exit_code INTEGER, source TEXT NOT NULL DEFAULT '',
            updated REAL NOT NULL,
            UNIQUE (cluster, job_id, start_time)
        );
        CREATE INDEX jobs_job_id ON jobs (job_id, start_time);
        CREATE INDEX jobs_user ON jobs (user_name, start_time);
        CREATE INDEX jobs_start ON jobs (start_time);
        CREATE TABLE job_samples (
            job_id INTEGER NOT NULL, node TEXT NOT NULL, step TEXT NOT NULL, ts INTEGER NOT NULL, {job_cols},
            PRIMARY KEY (job_id, node, step, ts)
        ) WITHOUT ROWID;
        CREATE TABLE node_samples (
            node TEXT NOT NULL, ts INTEGER NOT NULL, {node_cols}, PRIMARY KEY (node, ts)
        ) WITHOUT ROWID;
        CREATE TABLE gpu_samples (
            node TEXT NOT NULL, uuid TEXT NOT NULL, ts INTEGER NOT NULL, job_id INTEGER, {gpu_cols},
            PRIMARY KEY (uuid, ts)
        ) WITHOUT ROWID;
        CREATE TABLE filesystems (
            node TEXT NOT NULL, mountpoint TEXT NOT NULL, device TEXT, fstype TEXT, total_bytes REAL,
            used_bytes REAL, ts INTEGER NOT NULL, PRIMARY KEY (node, mountpoint)
        ) WITHOUT ROWID;
        CREATE TABLE gaps (
            node TEXT NOT NULL, stream_id TEXT NOT NULL, from_ms INTEGER, to_ms INTEGER, batches INTEGER,
            bytes INTEGER, received REAL NOT NULL
        );
    """,
    )


def _v2_auth(db: sqlite3.Connection) -> None:
    """Users, sessions (server side, so logout really ends a JWT), hashed API keys, audit log."""
    _script(
        db,
        """
        CREATE TABLE users (
            username TEXT PRIMARY KEY, password_hash TEXT, roles TEXT NOT NULL DEFAULT '["user"]',
            source TEXT NOT NULL DEFAULT 'local', email TEXT NOT NULL DEFAULT '',
            display_name TEXT NOT NULL DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY, username TEXT NOT NULL, kind TEXT NOT NULL, created REAL NOT NULL,
            expires REAL NOT NULL
        );
        CREATE INDEX sessions_expires ON sessions (expires);
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY, digest TEXT NOT NULL, owner TEXT NOT NULL, role TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '', created REAL NOT NULL, expires REAL, revoked REAL, last_used REAL
        );
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY, ts REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '', detail TEXT
        );
        """,
    )


# How each job sample column is rolled up: cumulative counters keep their last value (a min or mean of a
# counter means nothing), everything else keeps min, mean and max. ``n`` (samples) weights the mean when
# 1-minute rows are combined into hours.
COUNTER_COLUMNS: tuple[str, ...] = (
    "cpu_user_seconds",
    "cpu_system_seconds",
    "oom_kills",
    "io_read_bytes",
    "io_write_bytes",
)
GAUGE_COLUMNS: tuple[str, ...] = tuple(c for c in JOB_SAMPLE_COLUMNS if c not in COUNTER_COLUMNS)
ROLLUP_TABLES: dict[int, str] = {60: "job_samples_1m", 3600: "job_samples_1h"}


def rollup_value_columns() -> list[str]:
    """Value columns of a rollup table, in table order."""
    cols = ["n"]
    for c in JOB_SAMPLE_COLUMNS:
        cols += [f"{c}_last"] if c in COUNTER_COLUMNS else [f"{c}_min", f"{c}_avg", f"{c}_max"]
    return cols


def _v3_storage(db: sqlite3.Connection) -> None:
    """Rollups, their watermarks, summaries and tags (see docs/storage.md for the reasoning).

    ``job_series`` is the per (job, node, step) ledger the ingest path keeps current: the first raw sample
    still stored (retention seeks by it instead of scanning the raw table, whose key starts with job_id)
    and the earliest minute not yet rolled up (so the rollup reads only new data, late data included).
    """
    value_cols = ", ".join(f"{c} {'INTEGER' if c == 'n' else 'REAL'}" for c in rollup_value_columns())
    statements = [
        """CREATE TABLE job_series (
            job_id INTEGER NOT NULL, node TEXT NOT NULL, step TEXT NOT NULL,
            raw_first_ms INTEGER, last_ms INTEGER NOT NULL, dirty_1m_ms INTEGER, dirty_1h_ms INTEGER,
            m1_first_ms INTEGER,
            PRIMARY KEY (job_id, node, step)
        ) WITHOUT ROWID""",
        "CREATE INDEX job_series_raw_first ON job_series (raw_first_ms) WHERE raw_first_ms IS NOT NULL",
        "CREATE INDEX job_series_m1_first ON job_series (m1_first_ms) WHERE m1_first_ms IS NOT NULL",
        "CREATE INDEX job_series_dirty_1m ON job_series (dirty_1m_ms) WHERE dirty_1m_ms IS NOT NULL",
        "CREATE INDEX job_series_dirty_1h ON job_series (dirty_1h_ms) WHERE dirty_1h_ms IS NOT NULL",
        # Raw samples stored before v2 enter the ledger, all of them still to be rolled up.
        """INSERT INTO job_series (job_id, node, step, raw_first_ms, last_ms, dirty_1m_ms)
           SELECT job_id, node, step, min(ts), max(ts), min(ts) FROM job_samples GROUP BY job_id, node, step""",
        "CREATE TABLE storage_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
        """CREATE TABLE job_summaries (
            run_id INTEGER PRIMARY KEY REFERENCES jobs (run_id) ON DELETE CASCADE,
            computed REAL NOT NULL, summary TEXT NOT NULL
        )""",
        """CREATE TABLE tags (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL DEFAULT '', UNIQUE (name, type)
        )""",
        """CREATE TABLE job_tags (
            run_id INTEGER NOT NULL REFERENCES jobs (run_id) ON DELETE CASCADE,
            tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
            PRIMARY KEY (run_id, tag_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX job_tags_tag ON job_tags (tag_id)",
        "CREATE INDEX jobs_stop ON jobs (stop_time) WHERE stop_time IS NOT NULL",
    ]
    for table in ROLLUP_TABLES.values():
        statements.append(
            f"""CREATE TABLE {table} (
                job_id INTEGER NOT NULL, node TEXT NOT NULL, step TEXT NOT NULL, ts INTEGER NOT NULL, {value_cols},
                PRIMARY KEY (job_id, node, step, ts)
            ) WITHOUT ROWID"""
        )
    for statement in statements:
        db.execute(statement)


def _v4_role_requests(db: sqlite3.Connection) -> None:
    """Role requests sent to the admins (POST /api/notify/admin), listed for them until resolved."""
    _script(
        db,
        """
        CREATE TABLE role_requests (
            id INTEGER PRIMARY KEY, ts REAL NOT NULL, username TEXT NOT NULL, roles TEXT NOT NULL,
            client TEXT NOT NULL DEFAULT '', resolved REAL
        );
        CREATE INDEX role_requests_user ON role_requests (username, resolved);
        CREATE INDEX audit_log_ts ON audit_log (ts);
        """,
    )


def _v5_api_config(db: sqlite3.Connection) -> None:
    """Admin-edited API configuration (metric catalogue, partitions) as JSON documents by key."""
    _script(
        db,
        """
        CREATE TABLE api_config (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
        """,
    )


def _v6_packed_minutes(db: sqlite3.Connection) -> None:
    """1-minute rollups packed by hour: a row per (job, node, step, column, hour) of 60 float64 values.

    A job page at 60 s then reads the columns it shows instead of every column of every minute (see
    ``store/packed.py`` and docs/storage.md). Minutes of hours already rolled up to 1 hour move into the
    new table; the others stay in ``job_samples_1m``, which keeps holding the hour in progress and late
    minutes until the 1-hour pass packs them.
    """
    from jobpulse.collector.store.packing import pack_all  # packing imports this module's column lists

    db.execute(
        """CREATE TABLE job_samples_1m_packed (
            job_id INTEGER NOT NULL, node TEXT NOT NULL, step TEXT NOT NULL, col TEXT NOT NULL,
            hour INTEGER NOT NULL, vals BLOB NOT NULL,
            PRIMARY KEY (job_id, node, step, col, hour)
        ) WITHOUT ROWID"""
    )
    pack_all(db)


def _v7_job_identity(db: sqlite3.Connection) -> None:
    """Array tasks and het components (``8_1``, ``5+1``) as columns, and expanded node lists.

    Slurm gives each array task and het component its own job number; the link back (array 8, task 1)
    is known only to slurmctld (squeue, sacct, scontrol) and, for het jobs, the prolog's
    ``SLURM_HET_JOB_ID``. Earlier versions stored a reconciled job's hostlist unexpanded
    (``["node[001-004]"]``): those rows are expanded here so the ``Node`` filter finds them.
    """
    _script(
        db,
        """
        ALTER TABLE jobs ADD COLUMN array_job_id INTEGER;
        ALTER TABLE jobs ADD COLUMN array_task_id INTEGER;
        ALTER TABLE jobs ADD COLUMN het_job_id INTEGER;
        ALTER TABLE jobs ADD COLUMN het_job_offset INTEGER;
        CREATE INDEX jobs_array ON jobs (array_job_id, array_task_id) WHERE array_job_id IS NOT NULL;
        CREATE INDEX jobs_het ON jobs (het_job_id, het_job_offset) WHERE het_job_id IS NOT NULL
    """,
    )
    from jobpulse.collector.domain.hostnames import expand_all

    rows = db.execute("SELECT run_id, nodes FROM jobs WHERE nodes LIKE '%[%[%'").fetchall()
    for run_id, nodes in rows:
        try:
            names = json.loads(nodes)
        except ValueError:
            continue
        expanded = expand_all(n for n in names if isinstance(n, str))
        db.execute("UPDATE jobs SET nodes = ? WHERE run_id = ?", (json.dumps(expanded), run_id))


def _v8_credential_kinds(db: sqlite3.Connection) -> None:
    """Credentials by kind (issue 14): a WebSocket ticket names the session it was made from, and
    job-control keys belong to service principals.

    ``sessions.parent``: a ws-ticket is valid only while its parent session is, and logout ends both.
    Job-control keys were owned by a person (``admin``, the CLI's old default) or by ``api`` (the old
    default of POST /api/generateAPIKey, a user that never existed); each becomes ``service:<name>``
    (the key's name when it is a valid service name, else the old owner's, else ``legacy``) so that
    Slurm hooks keep working under the owner rule (see store/users.py). The change is audit-logged.
    """
    import json
    import re
    import time

    db.execute("ALTER TABLE sessions ADD COLUMN parent TEXT")
    db.execute("CREATE INDEX sessions_parent ON sessions (parent)")
    service = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
    rows = db.execute(
        "SELECT id, owner, name FROM api_keys WHERE role = 'job-control' AND owner NOT LIKE 'service:%'"
    ).fetchall()
    for key_id, owner, name in rows:
        candidates = [str(name or "").lower(), str(owner).lower(), "legacy"]
        new_owner = "service:" + next(c for c in candidates if service.match(c))
        db.execute("UPDATE api_keys SET owner = ? WHERE id = ?", (new_owner, key_id))
        db.execute(
            "INSERT INTO audit_log (ts, actor, action, target, detail) VALUES (?, 'migration', ?, ?, ?)",
            (
                time.time(),
                "move_api_key_to_service",
                key_id,
                json.dumps({"before": owner, "after": new_owner}),
            ),
        )


def _v9_job_script(db: sqlite3.Connection) -> None:
    """What JobMon's Slurm script sends on job start and jobpulse did not keep: the batch script
    (``jobScript``, shown as the job's ``JobScript``) and the tasks per node (``tasksPerNode``)."""
    _script(
        db,
        """
        ALTER TABLE jobs ADD COLUMN job_script TEXT;
        ALTER TABLE jobs ADD COLUMN tasks_per_node INTEGER
        """,
    )


def _v10_exit_signal(db: sqlite3.Connection) -> None:
    """Exit status as Slurm shows it (``code:signal``): the signal beside ``exit_code`` (JobMon's one
    integer, 128 + the signal for a signalled job), NULL where no source said. 125 is Slurm's OOM mark."""
    _script(db, "ALTER TABLE jobs ADD COLUMN exit_signal INTEGER")


def _v11_usage(db: sqlite3.Connection) -> None:
    """Usage history (issue 18): one accounting row per (cluster, job), its daily rollup and the values
    seen per dimension (store/usage.py)."""
    from jobpulse.collector.store.usage import SCHEMA

    _script(db, SCHEMA)


def _v12_usage_breakdown(db: sqlite3.Connection) -> None:
    """Usage per month broken down by a second dimension and by job size and node list (issue 18: filtered
    dashboard questions and the per-job charts, store/usage_breakdown.py), filled from the jobs already held."""
    from jobpulse.collector.store.usage import rebuild_breakdown
    from jobpulse.collector.store.usage_breakdown import SCHEMA

    _script(db, SCHEMA)
    rebuild_breakdown(db)


def _v13_filtered_day_sizes(db: sqlite3.Connection) -> None:
    """The job sizes per day and partition, account, QOS and state, and the node lists per day and
    partition (store/usage_breakdown.py ``DAY_PAIRS``), filled from the jobs already held: a filtered
    dashboard question over a window without a whole month reads them instead of the jobs."""
    from jobpulse.collector.store.usage_breakdown import DAY_PAIRS, fill_days

    fill_days(db, [(dim, kind) for dim, kind in DAY_PAIRS if dim])


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1,
    _v2_auth,
    _v3_storage,
    _v4_role_requests,
    _v5_api_config,
    _v6_packed_minutes,
    _v7_job_identity,
    _v8_credential_kinds,
    _v9_job_script,
    _v10_exit_signal,
    _v11_usage,
    _v12_usage_breakdown,
    _v13_filtered_day_sizes,
]
LATEST = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer collector (a downgrade): this code must not touch it.

    Its tables may hold columns and meanings this version does not know; writing to them could corrupt
    what the newer version relies on. ``jobpulse-collector serve`` and ``doctor`` report it with what to do.
    """

    def __init__(self, found: int, known: int) -> None:
        self.found, self.known = found, known
        super().__init__(
            f"database schema version {found} is newer than this collector ({known}): a newer jobpulse "
            "wrote it. Nothing was changed. Reinstall the newer jobpulse-collector, or restore the "
            "backup made before the upgrade (docs/operations.md, 'Upgrade and downgrade')"
        )


def current_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, target: int = LATEST) -> int:
    """Bring ``db`` to ``target``; each step in its own transaction. Returns the final version.

    Raises:
        SchemaTooNew: the database is newer than this code (checked before anything is written).
    """
    version = current_version(db)
    if version > LATEST:
        raise SchemaTooNew(version, LATEST)
    while version < target:
        migration = MIGRATIONS[version]
        db.execute("BEGIN IMMEDIATE")
        try:
            migration(db)
            version += 1
            db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return version
