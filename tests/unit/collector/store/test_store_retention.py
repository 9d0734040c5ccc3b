"""Retention deletes exactly what each resolution no longer keeps, and nothing of jobs or summaries."""

from __future__ import annotations

from pathlib import Path

from jobpulse.collector.store.retention import apply_retention
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.tags import add_tag
from jobpulse.proto.v1 import ingest_pb2 as pb
from storehelp import DAY, HOUR, T0, Agent, minute_rows, open_db


def _ts(db, table: str) -> list[int]:  # type: ignore[no-untyped-def]
    if table == "job_samples_1m":  # minutes are wide rows or packed by hour: read through both
        return sorted(r["ts"] for r in minute_rows(db))
    return [r[0] for r in db.execute(f"SELECT ts FROM {table} ORDER BY ts")]


def test_each_resolution_keeps_its_days(tmp_path: Path) -> None:
    db = open_db(tmp_path / "r.db")
    a = Agent(db, "n1")
    a.event(pb.JobEvent.START, 1, T0 // 1000, user="alice")
    now = T0 + 100 * DAY
    raw_cut = now - 14 * DAY  # minute-aligned already
    m1_cut = now - 90 * DAY
    old = [T0, T0 + 10_000]  # 100 days old: only the hourly row survives
    mid = [m1_cut + HOUR, m1_cut + HOUR + 10_000]  # 89 days: kept at 1-minute resolution
    edge = [raw_cut - 10_000, raw_cut]  # either side of the raw cutoff
    a.samples(1, [(t, {"cpu_cores": 1.0}) for t in old + mid + edge])
    rollup(db, now_ms=now)
    run_id = db.execute("SELECT run_id FROM jobs").fetchone()[0]
    add_tag(db, run_id, "keep-me", "user", "alice")
    db.execute("INSERT INTO job_summaries (run_id, computed, summary) VALUES (?, 0, '{}')", (run_id,))
    node_rows = [(t, "n1") for t in (raw_cut - 1, raw_cut)]
    db.executemany("INSERT INTO node_samples (ts, node) VALUES (?, ?)", node_rows)

    result = apply_retention(db, now, raw_days=14, days_1m=90, days_1h=0)

    assert _ts(db, "job_samples") == [raw_cut]
    assert result.raw_rows == 5
    assert _ts(db, "job_samples_1m") == [mid[0], raw_cut - 60_000, raw_cut]
    assert result.rows_1m == 1
    assert _ts(db, "job_samples_1h") == [T0, mid[0], raw_cut - HOUR, raw_cut]  # forever
    assert _ts(db, "node_samples") == [raw_cut]
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM job_summaries").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM job_tags").fetchone()[0] == 1
    assert db.execute("SELECT raw_first_ms, m1_first_ms FROM job_series").fetchone()[:] == (raw_cut, mid[0])
    # A second pass finds nothing more to delete.
    assert apply_retention(db, now, 14, 90, 0).raw_rows == 0


def test_hourly_retention_when_configured(tmp_path: Path) -> None:
    db = open_db(tmp_path / "r.db")
    Agent(db, "n1").samples(1, [(T0, {"cpu_cores": 1.0}), (T0 + 3 * DAY, {"cpu_cores": 1.0})])
    rollup(db, now_ms=T0 + 4 * DAY)
    result = apply_retention(db, T0 + 4 * DAY, raw_days=0, days_1m=0, days_1h=2)
    assert result.rows_1h == 1
    assert _ts(db, "job_samples_1h") == [T0 + 3 * DAY]
    assert len(_ts(db, "job_samples")) == 2  # raw_days=0: raw kept forever


def test_data_not_yet_rolled_up_is_never_deleted(tmp_path: Path) -> None:
    db = open_db(tmp_path / "r.db")
    Agent(db, "n1").samples(1, [(T0, {"cpu_cores": 4.0})])
    # The rollup never ran (collector down): retention keeps the raw sample rather than lose it.
    assert apply_retention(db, T0 + 30 * DAY, 14, 90, 0).raw_rows == 0
    rollup(db, now_ms=T0 + 30 * DAY)
    assert apply_retention(db, T0 + 30 * DAY, 14, 90, 0).raw_rows == 1
    assert [r["cpu_cores_avg"] for r in minute_rows(db)] == [4.0]
