"""The packed 1-minute layout answers exactly what the wide one-row-per-minute layout answered.

The reference is the SQL series query (``series._query``, still used for raw and hourly rows) run on
a wide table filled with the same minutes: both paths must give the same points for every aggregate,
interval and node combination, on whole packed hours (the fast path), partial hours, minutes not
measured (NaN), an hour still in progress (wide rows) and an unlimited memory limit.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from jobpulse.collector.store.migrations import rollup_value_columns
from jobpulse.collector.store.packed import PACKED, decode
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.series import _query
from jobpulse.collector.store.series_1m import minute_series
from storehelp import HOUR, T0, Agent, minute_rows, open_db

NOW = T0 + 3 * HOUR + 20 * 60_000  # hours 0-2 complete and packed, hour 3 in progress (wide)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    db = open_db(Path(tmp_path_factory.mktemp("packed")) / "p.db")
    rng = random.Random(7)
    for node in ("n1", "n2", "n3", "n4"):
        a = Agent(db, node)
        rows = []
        for k in range(0, (NOW - T0) // 10_000):
            ts = T0 + k * 10_000
            if node == "n2" and HOUR <= ts - T0 < HOUR + 600_000:
                continue  # n2 sent nothing for 10 minutes: minutes absent, not NaN
            if node == "n3" and ts - T0 < 2 * HOUR + 7 * 60_000:
                continue  # n3 joined late, mid-hour
            if node == "n4" and not 20 * 60_000 <= ts - T0 < 25 * 60_000:
                continue  # n4 ran 5 minutes: its complete hour stays wide (too few minutes to pack)
            if node == "n1" and k % 6 and rng.random() < 0.3:
                continue  # missed ticks: minutes of 1 to 6 samples weigh differently in means
            values = {
                "cpu_cores": rng.uniform(0, 64),
                "mem_current_bytes": float(rng.randrange(1 << 30)),
                "mem_limit_bytes": math.inf,
                "cpu_user_seconds": k * 3.0,
            }
            if node == "n1" and 30 <= k % 360 < 42 and ts - T0 < 2 * HOUR:
                values["cpu_cores"] = math.nan  # not measured for two minutes in each of hours 0 and 1
            rows.append((ts, values))
        a.samples(9, rows)
    rollup(db, now_ms=NOW, lag_ms=60_000)
    cols = rollup_value_columns()
    db.execute(
        f"CREATE TABLE ref_1m (job_id INTEGER, node TEXT, step TEXT, ts INTEGER, {', '.join(cols)},"
        " PRIMARY KEY (job_id, node, step, ts)) WITHOUT ROWID"
    )
    db.executemany(
        f"INSERT INTO ref_1m VALUES (?, ?, ?, ?, {', '.join('?' for _ in cols)})",
        [(r["job_id"], r["node"], r["step"], r["ts"], *(r[c] for c in cols)) for r in minute_rows(db, 9)],
    )
    return db


def _reference(db: sqlite3.Connection, *args: Any) -> list[tuple[str, list[int], list[list[Any]]]]:
    rows = _query(db, "ref_1m", 60, 9, "", *args)
    return [(r[0], json.loads(r[1]), [json.loads(v) for v in r[2:]]) for r in rows]


def _same(got: list[Any], want: list[Any]) -> None:
    assert [(n, t) for n, t, _ in got] == [(n, t) for n, t, _ in want]
    for (_, _, gv), (_, _, wv) in zip(got, want, strict=True):
        for g, w in zip(gv, wv, strict=True):
            assert [None if x is None else pytest.approx(x, rel=1e-12) for x in w] == g


def test_the_layout_holds_packed_hours_and_the_hour_in_progress(db: sqlite3.Connection) -> None:
    hours = [r[0] for r in db.execute(f"SELECT DISTINCT hour FROM {PACKED} ORDER BY 1")]
    assert hours == [T0, T0 + HOUR, T0 + 2 * HOUR]
    wide = db.execute("SELECT min(ts), max(ts) FROM job_samples_1m WHERE node != 'n4'").fetchone()
    assert tuple(wide) == (T0 + 3 * HOUR, NOW - 120_000)
    n4 = db.execute("SELECT ts FROM job_samples_1m WHERE node = 'n4'").fetchall()
    assert [r[0] for r in n4] == [T0 + m * 60_000 for m in range(20, 25)]
    blob = db.execute(f"SELECT vals FROM {PACKED} WHERE node = 'n2' AND col = 'n' AND hour = ?", (T0 + HOUR,))
    n = decode(blob.fetchone()[0])
    assert list(n[:10]) == [0.0] * 10 and set(n[10:]) == {6.0}  # the 10 silent minutes are absent


@pytest.mark.parametrize("agg_fn", ["avg", "min", "max", "sum"])
@pytest.mark.parametrize("interval", [60, 120, 300, 90, 3600])
@pytest.mark.parametrize("across", [False, True])
def test_same_answer_as_the_wide_layout(
    db: sqlite3.Connection, agg_fn: str, interval: int, across: bool
) -> None:
    metrics = ["cpu_cores", "mem_current_bytes", "cpu_user_seconds", "mem_limit_bytes"]
    nodes = ["n1", "n2", "n3", "n4"]
    # whole packed hours (hour 2: every node on the fast path), all of them, everything, partial hours
    ranges = (
        (T0 + 2 * HOUR, T0 + 3 * HOUR),
        (T0, T0 + 3 * HOUR),
        (T0 + HOUR, T0 + 3 * HOUR),  # n2's silent minutes now lead its data: trimmed, still the fast path
        (T0 + 2 * HOUR - 2_000, T0 + 3 * HOUR),  # an API-style start (job start - 2 s)
        (-(2**62), 2**62),
        (T0 + 1_234_000, NOW - HOUR),
    )
    for lo, hi in ranges:
        args = (nodes, metrics, interval, agg_fn, across, lo, hi)
        _same(minute_series(db, 9, "", *args), _reference(db, *args))


def test_summary_from_packed_minutes_matches_the_raw_samples(tmp_path: Path) -> None:
    """A job summarized after raw retention gets the same figures as from its raw samples."""
    from jobpulse.collector.store.summaries import run_figures
    from jobpulse.collector.summary import compute_summary
    from jobpulse.proto.v1 import ingest_pb2 as pb

    db = open_db(tmp_path / "s.db")
    rng = random.Random(3)
    stop = T0 + 2 * HOUR + 30 * 60_000  # two whole packed hours and half of a third
    for node in ("n1", "n2"):
        a = Agent(db, node)
        a.event(pb.JobEvent.START, 11, T0 // 1000, cpus_on_node=8)
        rows = []
        for k in range((stop - T0) // 10_000):
            if node == "n2" and k % 7 == 3:
                continue  # missed ticks
            values = {
                "cpu_user_seconds": 3.0 * k,
                "cpu_system_seconds": math.nan if k % 11 == 0 else 1.0 * k,
                "alloc_cpus": 8.0,
                "mem_current_bytes": float(rng.randrange(1 << 34)),
                "mem_peak_bytes": float(rng.randrange(1 << 34)),
                "mem_limit_bytes": math.inf if node == "n1" else 32.0 * (1 << 30),
                "gpu_util_percent": math.nan
                if node == "n1" and k < 396
                else rng.uniform(0, 100),  # whole minutes
                "io_read_bytes": 512.0 * k,
                "oom_kills": 0.0,
            }
            rows.append((T0 + k * 10_000, values))
        a.samples(11, rows)
        a.event(pb.JobEvent.STOP, 11, stop // 1000)
    run_id = db.execute("SELECT run_id FROM jobs").fetchone()[0]
    rollup(db, now_ms=stop + 2 * HOUR)
    assert db.execute(f"SELECT count(DISTINCT hour) FROM {PACKED}").fetchone()[0] == 3
    raw_figures = run_figures(db, run_id, now=stop / 1000)
    db.execute("DELETE FROM job_samples")
    minute_figures = run_figures(db, run_id, now=stop / 1000)
    assert raw_figures is not None and minute_figures is not None
    from_raw, from_minutes = compute_summary(raw_figures), compute_summary(minute_figures)
    assert (from_raw.source, from_minutes.source) == ("job_samples", "job_samples_1m")
    assert [n.node for n in from_minutes.nodes] == ["n1", "n2"]
    for raw, minute in zip(from_raw.nodes, from_minutes.nodes, strict=True):
        for name, want in vars(raw).items():
            got = getattr(minute, name)
            assert got == (pytest.approx(want, rel=1e-9) if isinstance(want, float) else want), name


def test_a_job_starting_mid_hour_is_still_read_whole_hours_at_a_time(db: sqlite3.Connection) -> None:
    """n3 started 7 minutes into hour 2: its first hour is cut to its minutes, no per-minute path."""
    from jobpulse.collector.store.packed import fetch
    from jobpulse.collector.store.series_1m import _whole_hours

    lo, hi = T0 + 2 * HOUR - 2_000, T0 + 3 * HOUR  # from before its first packed hour
    cols, packed, wide = fetch(db, 9, "", ["n3"], ["cpu_cores_avg"], lo, hi)
    assert wide == {}
    fast = _whole_hours(cols, packed["n3"], lo, hi)
    assert fast is not None
    times, values, samples = fast
    assert (times[0], times[-1], len(times)) == (T0 + 2 * HOUR + 7 * 60_000, T0 + 3 * HOUR - 60_000, 53)
    assert len(values[0]) == len(samples) == 53


def test_a_reader_never_misses_minutes_being_packed_under_it(tmp_path: Path) -> None:
    """The 1-hour pass commits between the reader's packed and wide SELECTs: one snapshot for both."""
    from jobpulse.collector.store.packed import read_hours
    from jobpulse.collector.store.sqlite import connect

    writer = open_db(tmp_path / "r.db")
    a = Agent(writer, "n1")
    a.samples(3, [(T0 + i * 10_000, {"cpu_cores": 1.0}) for i in range(6 * 40)])  # minutes 0-39
    rollup(writer, now_ms=T0 + 41 * 60_000)  # minutes 0-39 rolled up, still wide (hour in progress)
    a.samples(3, [(T0 + i * 10_000, {"cpu_cores": 1.0}) for i in range(6 * 40, 6 * 60)])
    reader = connect(tmp_path / "r.db")
    fired = []

    def pack_now(statement: str) -> None:
        if "FROM job_samples_1m WHERE" in statement and not fired:
            fired.append(statement)
            rollup(writer, now_ms=T0 + HOUR + 60_000)  # packs the whole hour, deletes the wide rows

    reader.set_trace_callback(pack_now)
    hours = read_hours(reader, 3, "", ["n1"], ["cpu_cores_avg"], T0, T0 + HOUR)
    reader.set_trace_callback(None)
    assert fired and writer.execute(f"SELECT count(*) FROM {PACKED}").fetchone()[0] > 0
    # the reader's snapshot predates the pass: the 40 wide minutes, not nothing
    assert sum(1 for k in hours["n1"][T0]["n"] if k > 0) == 40
    # and a read after it sees the packed hour
    after = read_hours(reader, 3, "", ["n1"], ["cpu_cores_avg"], T0, T0 + HOUR)
    assert sum(1 for k in after["n1"][T0]["n"] if k > 0) == 60


@pytest.mark.parametrize("how", ["avg", "sum", "min", "max"])
@pytest.mark.parametrize(
    ("first_minute", "minutes", "k"), [(7, 1433, 5), (0, 120, 2), (3, 4, 10), (59, 61, 60)]
)
def test_strided_intervals_equal_interval_by_interval_to_the_bit(
    how: str, first_minute: int, minutes: int, k: int
) -> None:
    """Consecutive minutes combined in passes over strided lists give exactly the per-interval figures."""
    from jobpulse.collector.store.series_1m import _combine, _spans

    rng = random.Random(first_minute * 1000 + minutes)
    times = [T0 + (first_minute + i) * 60_000 for i in range(minutes)]
    values = [rng.uniform(-1e6, 1e9) for _ in times]
    samples = [float(rng.randint(1, 6)) for _ in times]
    _, spans = _spans(times, k * 60_000)
    assert _combine(values, samples, spans, how, k) == _combine(values, samples, spans, how)
