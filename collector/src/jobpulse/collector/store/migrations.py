"""Versioned schema migrations, applied in order at start; PRAGMA user_version records the version.

Never edit a released migration: add a new one. Each must take a database at
the previous version to the next, and tests apply them from every version.
"""

from __future__ import annotations

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


def _v3_tags(db: sqlite3.Connection) -> None:
    """Job tags (JobMon's job.JobTag): a tag is shared by name and type, attached to job runs."""
    _script(
        db,
        """
        CREATE TABLE tags (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL DEFAULT '', UNIQUE (name, type)
        );
        CREATE TABLE job_tags (
            run_id INTEGER NOT NULL REFERENCES jobs (run_id) ON DELETE CASCADE,
            tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
            PRIMARY KEY (run_id, tag_id)
        ) WITHOUT ROWID;
        CREATE INDEX job_tags_tag ON job_tags (tag_id);
        """,
    )


def _v4_api_config(db: sqlite3.Connection) -> None:
    """Admin-edited API configuration (metric catalogue, partitions) as JSON documents by key."""
    _script(
        db,
        """
        CREATE TABLE api_config (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
        """,
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2_auth, _v3_tags, _v4_api_config]
LATEST = len(MIGRATIONS)


def current_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, target: int = LATEST) -> int:
    """Bring ``db`` to ``target``; each step in its own transaction. Returns the final version."""
    version = current_version(db)
    if version > LATEST:
        raise RuntimeError(
            f"database schema version {version} is newer than this collector ({LATEST}); upgrade jobpulse"
        )
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
