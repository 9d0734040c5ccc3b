"""A finished job's page read from the 1-minute rollups shows the points its raw samples give.

The job is put in as agents send it (the store's ingest path, three nodes, a start that is on no interval
boundary, missed ticks, a metric unmeasured for whole minutes, an unlimited memory limit on one node) and
ends mid-hour, so its last hour is still in wide minute rows while the earlier ones are packed. The page
is read once before any rollup (every point from the raw samples) and once after the rollup pass, with
the raw samples deleted as retention would, so that the second answer can only come from the rollups.
"""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pytest
from jobpulse.collector.domain.principals import Principal, Role
from jobpulse.collector.services.jobs import JobService
from jobpulse.collector.services.page_series import PageSeries
from jobpulse.collector.store.rollup import rollup
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from storehelp import HOUR, T0, Agent, db_of

ADMIN = Principal("admin", frozenset({Role.ADMIN.value}), "session", session_id="s1")
JOB = 4711
START = T0 + 7 * 60_000 + 43_000  # 00:07:43: on no minute, let alone a 2- or 5-minute boundary
STOP = START + 3 * HOUR + 20 * 60_000  # ends 20 minutes into its fourth hour


def _ingest(db: object) -> None:
    rng = random.Random(11)
    for index, node in enumerate(("n1", "n2", "n3")):
        agent = Agent(db, node)  # type: ignore[arg-type]
        agent.event(pb.JobEvent.START, JOB, START // 1000, cpus_on_node=8)
        rows = []
        for k in range((STOP - START) // 10_000 + 1):
            if node == "n2" and k % 13 == 5:
                continue  # missed ticks
            minute = (START + k * 10_000) // 60_000
            rows.append(
                (
                    START + k * 10_000,
                    {
                        "cpu_cores": rng.uniform(0, 8),
                        "cpu_user_seconds": 5.0 * k + index,
                        "mem_current_bytes": float(rng.randrange(1 << 34)),
                        "mem_limit_bytes": math.inf if node == "n1" else 32.0 * (1 << 30),
                        # unmeasured for whole minutes (a GPU idle between kernels, say)
                        "gpu_util_percent": math.nan if minute % 7 < 2 else rng.uniform(0, 100),
                        "io_read_bytes": 512.0 * k,
                    },
                )
            )
        for i in range(0, len(rows), 500):
            agent.samples(JOB, rows[i : i + 500])
        agent.event(pb.JobEvent.STOP, JOB, STOP // 1000)


def _points(page: PageSeries) -> dict[str, dict[str, list[tuple[float, float]]]]:
    return {config.GUID: per_node for config, per_node in page.metrics}


def _same(
    fast: dict[str, dict[str, list[tuple[float, float]]]],
    raw: dict[str, dict[str, list[tuple[float, float]]]],
) -> None:
    assert fast.keys() == raw.keys()
    for guid, per_node in raw.items():
        assert fast[guid].keys() == per_node.keys(), guid
        for node, points in per_node.items():
            got = fast[guid][node]
            assert [t for t, _ in got] == [t for t, _ in points], (guid, node)
            assert [v for _, v in got] == pytest.approx([v for _, v in points], rel=1e-9), (guid, node)


@pytest.mark.parametrize("interval", [None, 120.0, 300.0, 600.0])
async def test_the_rollups_give_the_raw_samples_points(fx_store: SqliteStore, interval: float | None) -> None:
    db = db_of(fx_store)
    _ingest(db)
    from_raw = await JobService(fx_store, tick=10.0).job_page(ADMIN, JOB, interval=interval)
    assert from_raw.interval >= 60  # the default for 3 h 20 min: 60 s, read from the rollups after the pass
    metrics = {"cpu_cores": "mean", "mem_current_bytes": "mean", "gpu_util_percent": "mean"}
    sums = {g: await JobService(fx_store, 10.0).metric(ADMIN, JOB, g, "sum", interval) for g in metrics}
    lows = {g: await JobService(fx_store, 10.0).metric(ADMIN, JOB, g, "min", interval) for g in metrics}

    rollup(db, now_ms=STOP + 3 * 60_000)  # the pass the collector runs every minute, after the job's end
    hours = db.execute("SELECT count(DISTINCT hour) FROM job_samples_1m_packed").fetchone()[0]
    wide = db.execute("SELECT count(*) FROM job_samples_1m").fetchone()[0]
    assert hours == 3 and wide > 0  # three packed hours; the last one's minutes still wide
    db.execute("DELETE FROM job_samples")  # only the rollups are left to read

    service = JobService(fx_store, tick=10.0)
    from_minutes = await service.job_page(ADMIN, JOB, interval=interval)
    assert from_minutes.interval == from_raw.interval
    _same(_points(from_minutes.series), _points(from_raw.series))
    assert len(_points(from_raw.series)["cpu_cores"]["n1"]) >= (STOP - START) / 1000 / from_raw.interval
    for guid in metrics:
        _same({guid: (await service.metric(ADMIN, JOB, guid, "sum", interval))[1]}, {guid: sums[guid][1]})
        _same({guid: (await service.metric(ADMIN, JOB, guid, "min", interval))[1]}, {guid: lows[guid][1]})


def test_web_columns_keep_every_node_and_time() -> None:
    """The web page's columns: shared times taken once; a node with other times or none yet gets nulls."""
    from jobpulse.collector.metric_catalog import default_metrics
    from jobpulse.collector.web.data import columns

    config = default_metrics("10s")[0]
    same = columns(config, {"n2": [(60.0, 2.0), (120.0, 3.0)], "n1": [(60.0, 1.0), (120.0, 4.0)]})
    assert (same.times, same.nodes) == ([60.0, 120.0], {"n1": [1.0, 4.0], "n2": [2.0, 3.0]})
    mixed = columns(config, {"n1": [(60.0, 1.0), (180.0, 4.0)], "n2": [(120.0, 3.0)], "n3": []})
    assert mixed.times == [60.0, 120.0, 180.0]
    assert mixed.nodes == {"n1": [1.0, None, 4.0], "n2": [None, 3.0, None], "n3": [None, None, None]}


async def test_a_page_is_charted_at_the_measured_tick_when_it_is_not_the_configured_one(
    fx_store: SqliteStore,
) -> None:
    """The series are read at the configured tick's interval while the tick is measured; a job sampled
    every 30 s (agents configured otherwise) is still charted at 30 s, first view and cached view alike."""
    db = db_of(fx_store)
    agent = Agent(db, "n1")
    agent.event(pb.JobEvent.START, 99, START // 1000)
    agent.samples(99, [(START + k * 30_000, {"cpu_cores": float(k % 4)}) for k in range(60)])  # 30 min
    agent.event(pb.JobEvent.STOP, 99, (START + 1_800_000) // 1000)
    service = JobService(fx_store, tick=10.0)
    for _ in range(2):
        page = await service.job_page(ADMIN, 99)
        assert page.interval == 30.0 and page.intervals[0] == 30.0
        times = [t for t, _ in _points(page.series)["cpu_cores"]["n1"]]
        assert len(times) == 60 and {b - a for a, b in pairwise(times)} == {30.0}
