"""job_series: resolution choice, stitching across raw/1m/1h, aggregation, validation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from jobpulse.collector.store.retention import apply_retention
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.series import job_series
from storehelp import DAY, HOUR, T0, Agent, open_db


def pairs(out: dict, metric: str, node: str) -> list[list[object]]:  # type: ignore[type-arg]
    """The columnar answer as [t, v] pairs, for readable expectations."""
    col = out["series"][metric][node]
    assert len(col["t"]) == len(col["v"])
    return [list(p) for p in zip(col["t"], col["v"], strict=True)]


NOW = T0 + 100 * DAY
B = NOW - 20 * DAY  # kept only at 1-minute resolution
C = NOW - 30_000  # not rolled up yet: raw only


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    """One job on two nodes with data that now lives in three different tables."""
    db = open_db(tmp_path / "s.db")
    for node, offset in (("n1", 0.0), ("n2", 10.0)):
        a = Agent(db, node)
        rows = [
            (T0, 2.0),
            (T0 + 10_000, 2.0),
            (T0 + 1_800_000, 6.0),
            (B, 1.0),
            (B + 10_000, 3.0),
            (C, 5.0),
            (C + 10_000, 7.0),
        ]
        a.samples(
            1,
            [
                (t, {"cpu_cores": v + offset, "mem_current_bytes": 100.0, "mem_limit_bytes": float("inf")})
                for t, v in rows
            ],
        )
    rollup(db, now_ms=NOW, lag_ms=60_000)
    apply_retention(db, NOW, 14, 90, 0)
    return db


def test_query_across_the_raw_1m_1h_boundary(db: sqlite3.Connection) -> None:
    out = job_series(db, 1, ["cpu_cores", "mem_limit_bytes"], 60, "avg")
    assert out["resolutions"] == ["job_samples_1h", "job_samples_1m", "job_samples"]
    n1 = pairs(out, "cpu_cores", "n1")
    assert n1 == [[T0, pytest.approx(10 / 3)], [B, 2.0], [NOW - 60_000, 6.0]]
    assert pairs(out, "cpu_cores", "n2")[1] == [B, 12.0]
    assert out["series"]["mem_limit_bytes"]["n1"]["v"] == [None, None, None]  # unlimited: null in JSON


def test_coarsest_resolution_that_satisfies_the_interval(db: sqlite3.Connection) -> None:
    hourly = job_series(db, 1, ["cpu_cores"], 3600, "max")
    assert hourly["resolutions"] == ["job_samples_1h", "job_samples"]
    assert pairs(hourly, "cpu_cores", "n1") == [[T0, 6.0], [B, 3.0], [NOW - HOUR, 7.0]]
    fine = job_series(db, 1, ["cpu_cores"], 10, "avg")
    assert fine["resolutions"] == ["job_samples_1h", "job_samples_1m", "job_samples"]
    assert pairs(fine, "cpu_cores", "n1")[-2:] == [[C, 5.0], [C + 10_000, 7.0]]
    five = job_series(db, 1, ["cpu_cores"], 300, "min", start_ms=B - DAY, end_ms=NOW - DAY)
    assert five == {
        "sample_interval_s": 300,
        "agg_fn": "min",
        "resolutions": ["job_samples_1m"],
        "series": {"cpu_cores": {"n1": {"t": [B], "v": [1.0]}, "n2": {"t": [B], "v": [11.0]}}},
    }


def test_aggregation_across_nodes(db: sqlite3.Connection) -> None:
    total = job_series(db, 1, ["cpu_cores"], 60, "sum", across_nodes=True, start_ms=B, end_ms=B + 60_000)
    assert pairs(total, "cpu_cores", "*") == [[B, (1 + 3) + (11 + 13)]]
    peak = job_series(db, 1, ["cpu_cores"], 60, "max", across_nodes=True, start_ms=C - 30_000)
    assert pairs(peak, "cpu_cores", "*") == [[NOW - 60_000, 17.0]]
    only = job_series(db, 1, ["cpu_cores"], 60, "avg", nodes=["n2"], start_ms=B, end_ms=B + 60_000)
    assert only["series"]["cpu_cores"] == {"n2": {"t": [B], "v": [12.0]}}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"agg_fn": "median"}, "agg_fn"),
        ({"sample_interval_s": 0}, "sample_interval_s"),
        ({"sample_interval_s": 1.5}, "sample_interval_s"),
        ({"metrics": ["cpu_cores", "nope"]}, "metrics"),
        ({"metrics": []}, "metrics"),
    ],
)
def test_invalid_arguments_name_the_parameter(db: sqlite3.Connection, kwargs: dict, name: str) -> None:  # type: ignore[type-arg]
    args = {"metrics": ["cpu_cores"], "sample_interval_s": 60, "agg_fn": "avg", **kwargs}
    with pytest.raises(ValueError, match=f"^{name}"):
        job_series(db, 1, **args)


def test_unknown_job_is_empty(db: sqlite3.Connection) -> None:
    assert job_series(db, 999, ["cpu_cores"], 60)["series"] == {"cpu_cores": {}}
