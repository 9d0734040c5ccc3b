"""Migrations from every earlier schema version, with data, on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from jobpulse.collector.store.migrations import (
    JOB_SAMPLE_COLUMNS,
    LATEST,
    current_version,
    migrate,
    rollup_value_columns,
)
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.series import job_series
from jobpulse.collector.store.sqlite import connect
from storehelp import HOUR, T0, minute_rows


def _v1_data(db: sqlite3.Connection) -> None:
    """What a version-1 collector stored: a job and 2 minutes of samples on two nodes."""
    db.execute(
        "INSERT INTO jobs (job_id, cluster, user_name, nodes, start_time, stop_time, is_running, state, updated)"
        " VALUES (5, 'c', 'alice', '[\"n1\",\"n2\"]', ?, ?, 0, 'COMPLETED', 0)",
        (T0 // 1000, T0 // 1000 + 120),
    )
    cols = ", ".join(JOB_SAMPLE_COLUMNS)
    marks = ", ".join("?" for _ in JOB_SAMPLE_COLUMNS)
    for node, base in (("n1", 1.0), ("n2", 3.0)):
        for i in range(12):
            values = [base + i if c == "cpu_cores" else 1.0 for c in JOB_SAMPLE_COLUMNS]
            db.execute(
                f"INSERT INTO job_samples (job_id, node, step, ts, {cols}) VALUES (5, ?, '', ?, {marks})",
                (node, T0 + i * 10_000, *values),
            )


@pytest.mark.parametrize("start", range(LATEST))
def test_migrates_from_every_earlier_version(tmp_path: Path, start: int) -> None:
    db = connect(tmp_path / "old.db")
    migrate(db, target=start)
    assert current_version(db) == start
    # Samples written straight into job_samples are what collectors before the ledger (v3) stored;
    # from v3 on the ingest path keeps the ledger, so the raw-insert fixture only fits v1 and v2.
    old_samples = 1 <= start < 3
    if old_samples:
        _v1_data(db)
    db.close()

    db = connect(tmp_path / "old.db")
    assert migrate(db) == LATEST
    assert current_version(db) == LATEST
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"job_series", "job_samples_1m", "job_samples_1h", "job_summaries", "tags", "job_tags"} <= tables
    assert "role_requests" in tables
    if old_samples:
        # The old samples are untouched, known to the ledger, and roll up like new ones.
        assert db.execute("SELECT count(*) FROM job_samples").fetchone()[0] == 24
        ledger = db.execute(
            "SELECT node, raw_first_ms, last_ms, dirty_1m_ms FROM job_series ORDER BY node"
        ).fetchall()
        assert [tuple(r) for r in ledger] == [("n1", T0, T0 + 110_000, T0), ("n2", T0, T0 + 110_000, T0)]
        rollup(db, now_ms=T0 + HOUR + 120_000)
        out = job_series(db, 5, ["cpu_cores"], 60, "avg")
        assert out["resolutions"] == ["job_samples_1m"]
        assert out["series"]["cpu_cores"] == {
            "n1": {"t": [T0, T0 + 60_000], "v": [3.5, 9.5]},
            "n2": {"t": [T0, T0 + 60_000], "v": [5.5, 11.5]},
        }


def _v5_minutes(db: sqlite3.Connection) -> None:
    """What a version-5 collector held: wide 1-minute rows, hour T0 rolled up to 1 hour, T0+1h in progress.

    Hour T0 has 32 minutes (cpu_cores mean 2, 3, ..., 33), enough to be packed; hour T0+1h one minute.
    """
    cols = rollup_value_columns()
    minutes = [(T0 + m * 60_000, 2.0 + m) for m in range(32)] + [(T0 + HOUR, 8.0)]
    for ts, avg in minutes:
        values = {"n": 6, "cpu_cores_min": avg - 1, "cpu_cores_avg": avg, "cpu_cores_max": avg + 1}
        values["cpu_user_seconds_last"] = ts / 1000 - T0 / 1000
        db.execute(
            f"INSERT INTO job_samples_1m (job_id, node, step, ts, {', '.join(cols)})"
            f" VALUES (7, 'n1', '', ?, {', '.join('?' for _ in cols)})",
            (ts, *(values.get(c) for c in cols)),
        )
    db.execute(
        "INSERT INTO job_samples_1h (job_id, node, step, ts, n, cpu_cores_avg) VALUES (7, 'n1', '', ?, 192, 17.5)",
        (T0,),
    )
    db.execute(
        "INSERT INTO job_series (job_id, node, step, raw_first_ms, last_ms, dirty_1m_ms, dirty_1h_ms, m1_first_ms)"
        " VALUES (7, 'n1', '', NULL, ?, NULL, ?, ?)",
        (T0 + HOUR + 50_000, T0 + HOUR, T0),
    )
    db.executemany(
        "INSERT INTO storage_state (key, value) VALUES (?, ?)",
        [("rollup_1m_upto_ms", T0 + HOUR + 60_000), ("rollup_1h_upto_ms", T0 + HOUR)],
    )


def test_v6_packs_the_1_minute_rows_of_complete_hours(tmp_path: Path) -> None:
    db = connect(tmp_path / "v5.db")
    migrate(db, target=5)
    _v5_minutes(db)
    db.close()

    db = connect(tmp_path / "v5.db")
    assert migrate(db) == LATEST >= 6
    # Hour T0 (rolled up to 1 hour) is now one packed row per column; the hour in progress stays wide.
    packed = db.execute("SELECT DISTINCT hour FROM job_samples_1m_packed").fetchall()
    assert [r[0] for r in packed] == [T0]
    assert [r[0] for r in db.execute("SELECT ts FROM job_samples_1m")] == [T0 + HOUR]
    # Readers see the same minutes and values as the v5 rows held, whichever table they are in now.
    out = job_series(db, 7, ["cpu_cores", "cpu_user_seconds"], 60, "avg")
    times = [T0 + m * 60_000 for m in range(32)] + [T0 + HOUR]
    assert out["series"]["cpu_cores"]["n1"] == {"t": times, "v": [2.0 + m for m in range(32)] + [8.0]}
    assert out["series"]["cpu_user_seconds"]["n1"]["v"] == [60.0 * m for m in range(32)] + [3600.0]
    two = job_series(db, 7, ["cpu_cores"], 120, "max")["series"]["cpu_cores"]["n1"]["v"]
    assert two == [4.0 + 2 * j for j in range(16)] + [9.0]  # max of (m, m+1) is (2 + m + 1) + 1
    rows = minute_rows(db, 7)
    assert [(r["ts"], r["n"], r["cpu_cores_max"]) for r in (rows[0], rows[1], rows[-1])] == [
        (T0, 6, 3.0),
        (T0 + 60_000, 6, 4.0),
        (T0 + HOUR, 6, 9.0),
    ]
    # The collector goes on: the next 1-hour pass computes the hour in progress from its wide minute
    # (one minute: too few to be worth packing, it stays wide).
    rollup(db, now_ms=T0 + 2 * HOUR + 60_000)
    hour = db.execute("SELECT n, cpu_cores_avg, cpu_cores_max FROM job_samples_1h WHERE ts = ?", (T0 + HOUR,))
    assert tuple(hour.fetchone()) == (6, 8.0, 9.0)
    assert [r[0] for r in db.execute("SELECT DISTINCT hour FROM job_samples_1m_packed")] == [T0]


def test_refuses_a_database_from_a_newer_collector(tmp_path: Path) -> None:
    db = connect(tmp_path / "new.db")
    db.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(RuntimeError, match="newer than this collector"):
        migrate(db)
