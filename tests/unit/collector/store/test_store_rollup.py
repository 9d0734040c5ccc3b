"""Rollups against hand-computed values; incremental and late data."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from jobpulse.collector.store.packed import COLUMNS, PACKED
from jobpulse.collector.store.rollup import rollup
from storehelp import HOUR, T0, Agent, minute_rows, open_db


def _row(db, table: str, ts: int, node: str = "n1") -> dict:  # type: ignore[no-untyped-def]
    """The row of one minute or hour; minutes may be wide or packed by hour, read through both."""
    if table == "job_samples_1m":
        found = [r for r in minute_rows(db, 1) if r["node"] == node and r["ts"] == ts]
        assert found, f"no 1-minute data at {ts}"
        return found[0]
    row = db.execute(f"SELECT * FROM {table} WHERE job_id = 1 AND node = ? AND ts = ?", (node, ts)).fetchone()
    assert row is not None, f"no {table} row at {ts}"
    return dict(row)


def test_minute_and_hour_rows_match_hand_computed_values(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    a = Agent(db, "n1")
    # Minute 0: 6 samples cpu 1..6, memory 10..60; minute 1: 3 samples (ticks missed), cpu 10, 20, 30.
    a.samples(
        1,
        [
            (
                T0 + i * 10_000,
                {"cpu_cores": i + 1, "mem_current_bytes": 10 * (i + 1), "cpu_user_seconds": 5 * i},
            )
            for i in range(6)
        ],
    )
    a.samples(
        1,
        [
            (T0 + 60_000 + i * 20_000, {"cpu_cores": 10 * (i + 1), "cpu_user_seconds": 100 + i})
            for i in range(3)
        ],
    )
    result = rollup(db, now_ms=T0 + HOUR + 60_000)
    assert (result.series_1m, result.rows_1m, result.series_1h, result.rows_1h) == (1, 2, 1, 1)

    m0 = _row(db, "job_samples_1m", T0)
    assert (m0["n"], m0["cpu_cores_min"], m0["cpu_cores_avg"], m0["cpu_cores_max"]) == (6, 1, 3.5, 6)
    assert (m0["mem_current_bytes_min"], m0["mem_current_bytes_avg"], m0["mem_current_bytes_max"]) == (
        10,
        35,
        60,
    )
    assert m0["cpu_user_seconds_last"] == 25
    m1 = _row(db, "job_samples_1m", T0 + 60_000)
    assert (m1["n"], m1["cpu_cores_min"], m1["cpu_cores_avg"], m1["cpu_cores_max"]) == (3, 10, 20, 30)
    assert m1["mem_current_bytes_avg"] is None  # not measured in that minute: null, not 0
    assert m1["cpu_user_seconds_last"] == 102

    h = _row(db, "job_samples_1h", T0)
    # Weighted by samples: (1+2+...+6 + 10+20+30) / 9 = 81 / 9 = 9, not the mean of minute means (11.75).
    assert h["n"] == 9
    assert h["cpu_cores_avg"] == pytest.approx(9.0)
    assert (h["cpu_cores_min"], h["cpu_cores_max"], h["cpu_user_seconds_last"]) == (1, 30, 102)
    assert h["mem_current_bytes_avg"] == pytest.approx(35.0)


def test_only_complete_periods_and_only_new_data(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    a, b = Agent(db, "n1"), Agent(db, "n2")
    a.samples(1, [(T0 + i * 10_000, {"cpu_cores": 1.0}) for i in range(9)])  # minute 0 and half of minute 1
    b.samples(2, [(T0 + i * 10_000, {"cpu_cores": 2.0}) for i in range(6)])
    # At T0+2:10 with a 60 s lag, minute 1 is not complete yet (could still receive samples).
    first = rollup(db, now_ms=T0 + 130_000, lag_ms=60_000)
    assert (first.series_1m, first.rows_1m, first.upto_1m_ms) == (2, 2, T0 + 60_000)
    assert first.rows_1h == 0  # the hour is not complete
    again = rollup(db, now_ms=T0 + 130_000, lag_ms=60_000)
    assert (again.series_1m, again.rows_1m) == (0, 0)  # nothing new: nothing read
    a.samples(1, [(T0 + 90_000, {"cpu_cores": 7.0})])
    later = rollup(db, now_ms=T0 + 180_000, lag_ms=60_000)
    assert later.series_1m == 1  # only job 1's node has new data
    assert _row(db, "job_samples_1m", T0 + 60_000)["cpu_cores_avg"] == pytest.approx((1 + 1 + 1 + 7) / 4)


def test_late_data_recomputes_its_minute_and_hour(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    a = Agent(db, "n1")
    a.samples(1, [(T0 + i * 10_000, {"cpu_cores": 2.0}) for i in range(3)])
    a.samples(1, [(T0 + HOUR + 10_000, {"cpu_cores": 2.0})])
    rollup(db, now_ms=T0 + 2 * HOUR + 120_000)
    assert _row(db, "job_samples_1h", T0)["cpu_cores_avg"] == 2.0
    # A spool replay after an outage delivers samples of that first minute an hour late.
    a.samples(1, [(T0 + 30_000 + i * 10_000, {"cpu_cores": 8.0}) for i in range(3)])
    rollup(db, now_ms=T0 + 2 * HOUR + 180_000)
    assert _row(db, "job_samples_1m", T0)["cpu_cores_avg"] == pytest.approx(5.0)
    h = _row(db, "job_samples_1h", T0)
    assert (h["n"], h["cpu_cores_avg"], h["cpu_cores_max"]) == (6, pytest.approx(5.0), 8.0)


def test_not_measured_values_stay_null(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    Agent(db, "n1").samples(
        1, [(T0 + i * 10_000, {"cpu_cores": 1.0, "gpu_util_percent": math.nan}) for i in range(6)]
    )
    rollup(db, now_ms=T0 + HOUR + 60_000)
    assert _row(db, "job_samples_1m", T0)["gpu_util_percent_avg"] is None
    assert _row(db, "job_samples_1h", T0)["gpu_util_percent_max"] is None


def test_complete_hours_are_packed_and_late_minutes_merged_into_them(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    a = Agent(db, "n1")
    a.samples(1, [(T0 + i * 10_000, {"cpu_cores": 2.0}) for i in range(6 * 40)])  # minutes 0 to 39
    a.samples(1, [(T0 + HOUR + 10_000, {"cpu_cores": 2.0})])  # the next hour, still in progress
    short = Agent(db, "n2")  # a 5-minute job: too few minutes to be worth 39 packed rows
    short.samples(2, [(T0 + i * 10_000, {"cpu_cores": 1.0}) for i in range(6 * 5)])
    rollup(db, now_ms=T0 + HOUR + 120_000)

    def rows(table: str, ts_col: str, job: int = 1) -> list[int]:
        sql = f"SELECT DISTINCT {ts_col} FROM {table} WHERE job_id = ? ORDER BY 1"
        return [r[0] for r in db.execute(sql, (job,))]

    # The complete hour is one row per column (60 minutes each); the hour in progress stays wide.
    assert rows(PACKED, "hour") == [T0]
    assert db.execute(f"SELECT count(*) FROM {PACKED} WHERE job_id = 1").fetchone()[0] == len(COLUMNS)
    assert rows("job_samples_1m", "ts") == [T0 + HOUR]
    # The short job's hour is complete too, but stays as 5 wide minutes; its hour row exists all the same.
    assert rows(PACKED, "hour", job=2) == []
    assert len(rows("job_samples_1m", "ts", job=2)) == 5
    assert db.execute("SELECT n, cpu_cores_avg FROM job_samples_1h WHERE job_id = 2").fetchone()[:] == (
        30,
        1.0,
    )
    # A late sample for minute 1 of the packed hour: merged into that hour's rows, not left wide.
    a.samples(1, [(T0 + 65_000, {"cpu_cores": 14.0})])
    rollup(db, now_ms=T0 + HOUR + 180_000)
    assert rows("job_samples_1m", "ts") == [T0 + HOUR]
    assert rows(PACKED, "hour") == [T0]
    assert [(r["ts"], r["n"], r["cpu_cores_avg"]) for r in minute_rows(db, 1)][:2] == [
        (T0, 6, 2.0),
        (T0 + 60_000, 7, pytest.approx((6 * 2 + 14) / 7)),
    ]
    assert _row(db, "job_samples_1h", T0)["cpu_cores_max"] == 14.0
    assert _row(db, "job_samples_1h", T0)["n"] == 241
