"""Migrations from every earlier schema version, with data, on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS, LATEST, current_version, migrate
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.series import job_series
from jobpulse.collector.store.sqlite import connect
from storehelp import HOUR, T0


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


def test_refuses_a_database_from_a_newer_collector(tmp_path: Path) -> None:
    db = connect(tmp_path / "new.db")
    db.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(RuntimeError, match="newer than this collector"):
        migrate(db)
