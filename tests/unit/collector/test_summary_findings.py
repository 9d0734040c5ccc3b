"""Summaries and efficiency findings for crafted jobs, on real SQLite files."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from jobpulse.collector.domain.summaries import StoredSummary
from jobpulse.collector.findings import Thresholds
from jobpulse.collector.services.events import EventBus, FindingAdded
from jobpulse.collector.services.summaries import summarize_pass
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.collector.store.summaries import load_summary
from jobpulse.collector.store.tags import job_tags
from jobpulse.proto.v1 import ingest_pb2 as pb
from storehelp import T0, Agent, db_of, open_db, summarize

START = T0 // 1000
GIB = float(1 << 30)


def _gpu_job(db: sqlite3.Connection, job_id: int, node: str, util: float) -> int:
    """A 1-hour job with 8 allocated CPUs (4 used), 16 GiB requested (8 used) and 2 GPUs at ``util``%."""
    gpus = [f"GPU-{node}-0", f"GPU-{node}-1"]
    a = Agent(db, node, gpus=gpus)
    a.event(
        pb.JobEvent.START,
        job_id,
        START,
        user="alice",
        num_nodes=1,
        cpus_on_node=8,
        mem_requested_bytes=int(16 * GIB),
        gpus=gpus,
    )
    ticks = range(0, 3600 + 1, 60)
    a.samples(
        job_id,
        [
            (
                T0 + s * 1000,
                {
                    "cpu_user_seconds": 3.0 * s,
                    "cpu_system_seconds": 1.0 * s,
                    "alloc_cpus": 8.0,
                    "mem_current_bytes": 8 * GIB,
                    "mem_peak_bytes": 8 * GIB,
                    "mem_limit_bytes": 16 * GIB,
                    "io_read_bytes": 1000.0 * s,
                    "oom_kills": 0.0,
                    "gpu_util_percent": util,
                },
            )
            for s in ticks
        ],
    )
    for i, uuid in enumerate(gpus):
        a.gpu(uuid, job_id, [(T0 + s * 1000, util + i, 2 * GIB * (i + 1), 500.0 * s) for s in ticks])
    a.event(pb.JobEvent.STOP, job_id, START + 3600, state="COMPLETED")
    return int(db.execute("SELECT run_id FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0])


def _rules(summary: StoredSummary) -> set[str]:
    return {f.rule for f in summary.findings}


def test_summary_values(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    run = _gpu_job(db, 10, "g1", util=80.0)
    s = summarize(db, run, now=START + 4000, thresholds=Thresholds())
    assert s is not None
    assert s.duration_s == 3600
    assert s.cpu_seconds == 4 * 3600 and s.alloc_core_seconds == 8 * 3600
    assert s.cpu_efficiency == pytest.approx(0.5)
    assert s.cpu_hours == pytest.approx(4.0)
    assert (s.gpus, s.gpu_hours) == (2, pytest.approx(2.0))
    assert (s.mem_peak_bytes, s.mem_requested_bytes, s.mem_limit_bytes) == (8 * GIB, 16 * GIB, 16 * GIB)
    assert [(g.uuid, g.util_mean_percent, g.util_max_percent, g.mem_peak_bytes) for g in s.gpu_detail] == [
        ("GPU-g1-0", 80.0, 80.0, 2 * GIB),
        ("GPU-g1-1", 81.0, 81.0, 4 * GIB),
    ]
    assert s.energy_joules == 2 * 500.0 * 3600  # two GPU energy counters
    assert s.io_read_bytes == 1000.0 * 3600 and s.io_write_bytes is None  # not measured stays None
    assert s.oom_kills == 0 and s.findings == ()
    stored = load_summary(db, run)
    assert stored is not None and stored.figures["cpu_efficiency"] == pytest.approx(0.5)


def test_summary_metrics_mean_max_and_limit(tmp_path: Path) -> None:
    """Per metric, the mean and highest whole-job sample over all nodes, and what a node was given:
    what the job list's radar chart is drawn from."""
    db = open_db(tmp_path / "j.db")
    run = _gpu_job(db, 14, "g1", util=80.0)
    s = summarize(db, run, now=START + 4000, thresholds=Thresholds())
    assert s is not None
    assert s.metrics["gpu_util_percent"] == {"mean": 80.0, "max": 80.0, "limit": 100.0}
    assert s.metrics["mem_current_bytes"] == {"mean": 8 * GIB, "max": 8 * GIB, "limit": 16 * GIB}
    assert s.metrics["alloc_cpus"] == {"mean": 8.0, "max": 8.0, "limit": None}
    io = s.metrics["io_read_bytes"]  # a counter: 0, 60000, ... 3600000 at 61 ticks
    assert io["mean"] == pytest.approx(1000.0 * 1800) and io["max"] == 1000.0 * 3600
    assert "cpu_cores" not in s.metrics and "mem_limit_bytes" in s.metrics  # never measured: absent
    stored = load_summary(db, run)
    assert stored is not None and stored.metrics["gpu_util_percent"]["mean"] == 80.0


async def test_idle_gpu_job_gets_the_finding_and_a_busy_one_does_not(tmp_path: Path) -> None:
    """The scheduled summary pass over a real store: the finding is stored, tagged and published."""
    store = SqliteStore(tmp_path / "j.db")
    store.open()
    bus = EventBus()
    published: list[FindingAdded] = []
    bus.subscribe(FindingAdded, published.append)
    db = db_of(store)
    try:
        idle = _gpu_job(db, 11, "g1", util=1.0)
        busy = _gpu_job(db, 12, "g2", util=90.0)
        assert await summarize_pass(store, START + 3700, 60, Thresholds(), bus) == 2
        idle_summary, busy_summary = load_summary(db, idle), load_summary(db, busy)
        assert idle_summary is not None and busy_summary is not None
        finding = next(f for f in idle_summary.findings if f.rule == "idle_gpu")
        assert (finding.value, finding.threshold) == (1.0, 5.0)
        assert "GPU" in finding.hint
        assert "idle_gpu" not in _rules(busy_summary)
        assert [(t.name, t.type, t.created_by) for t in job_tags(db, idle)] == [
            ("idle_gpu", "finding", "jobpulse")
        ]
        assert job_tags(db, busy) == []
        for _ in range(100):  # a subscriber gets its events in a later callback of the loop
            if published:
                break
            await asyncio.sleep(0.01)
        assert published == [FindingAdded(11, "idle_gpu")]
        assert await summarize_pass(store, START + 3800, 60, Thresholds(), bus) == 0  # once per run
        await asyncio.sleep(0.05)
        assert published == [FindingAdded(11, "idle_gpu")]
    finally:
        store.close()


def test_thresholds_are_configurable(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    run = _gpu_job(db, 13, "g1", util=80.0)
    strict = Thresholds(cpu_efficiency_min=0.6, gpu_idle_percent=85.0, mem_used_fraction_min=0.75)
    s = summarize(db, run, now=START + 4000, thresholds=strict)
    assert s is not None
    by_rule = {f.rule: f for f in s.findings}
    assert set(by_rule) == {"idle_gpu", "low_cpu_efficiency", "memory_underused"}
    assert (by_rule["low_cpu_efficiency"].value, by_rule["low_cpu_efficiency"].threshold) == (0.5, 0.6)
    assert by_rule["memory_underused"].value == 0.5


def test_oom_near_limit_short_many_nodes_and_gaps(tmp_path: Path) -> None:
    db = open_db(tmp_path / "j.db")
    agents = [Agent(db, f"c{i}") for i in range(8)]
    for a in agents:
        a.event(pb.JobEvent.START, 20, START, num_nodes=8, cpus_on_node=4)
        a.samples(
            20,
            [
                (
                    T0 + s * 1000,
                    {
                        "cpu_user_seconds": 4.0 * s,
                        "alloc_cpus": 4.0,
                        "mem_current_bytes": 990.0,
                        "mem_peak_bytes": 990.0,
                        "mem_limit_bytes": 1000.0,
                        "oom_kills": 0.0,
                    },
                )
                for s in range(0, 61, 10)
            ],
        )
    agents[0].samples(20, [(T0 + 61_000, {"oom_kills": 1.0})])
    gap = pb.Batch()
    gap.gaps.add(from_ms=T0 + 20_000, to_ms=T0 + 30_000, batches=3, bytes=1234)
    agents[1].send(gap)
    agents[0].event(pb.JobEvent.STOP, 20, START + 62, state="OUT_OF_MEMORY")
    run = int(db.execute("SELECT run_id FROM jobs WHERE job_id = 20").fetchone()[0])
    s = summarize(db, run, now=START + 200, thresholds=Thresholds())
    assert s is not None
    assert s.num_nodes == 8 and s.oom_kills == 1
    assert {f.rule for f in s.findings} == {"oom_killed", "short_many_nodes"}
    assert s.gaps == (
        {"node": "c1", "from_ms": T0 + 20_000, "to_ms": T0 + 30_000, "batches": 3, "bytes": 1234},
    )
    # Without the OOM kill the same memory profile is "near the limit".
    db.execute("UPDATE job_samples SET oom_kills = 0")
    s = summarize(db, run, now=START + 200, thresholds=Thresholds())
    assert s is not None
    near = next(f for f in s.findings if f.rule == "memory_near_limit")
    assert (near.value, near.threshold) == (0.99, 0.95)
    assert json.loads(db.execute("SELECT summary FROM job_summaries").fetchone()[0])["findings"][0]["rule"]


def test_summary_from_rollups_when_raw_samples_are_gone(tmp_path: Path) -> None:
    """A job summarized after raw retention (e.g. the collector was down) still gets its figures."""
    from jobpulse.collector.store.retention import apply_retention
    from jobpulse.collector.store.rollup import rollup
    from storehelp import DAY

    db = open_db(tmp_path / "j.db")
    run = _gpu_job(db, 30, "g1", util=80.0)
    rollup(db, now_ms=T0 + 20 * DAY)
    apply_retention(db, T0 + 20 * DAY, 14, 90, 0)
    assert db.execute("SELECT count(*) FROM job_samples").fetchone()[0] == 0
    s = summarize(db, run, now=START + 20 * 86400, thresholds=Thresholds())
    assert s is not None and s.source == "job_samples_1m"
    assert s.cpu_efficiency == pytest.approx(0.5)
    assert s.mem_peak_bytes == 8 * GIB
    assert s.metrics["gpu_util_percent"] == {"mean": pytest.approx(80.0), "max": 80.0, "limit": 100.0}
    assert s.metrics["io_read_bytes"] == {"mean": None, "max": 1000.0 * 3600, "limit": None}  # a counter


async def test_a_summary_made_before_a_nodes_last_batch_is_made_again_with_it(tmp_path: Path) -> None:
    """The pass waits ``summary_delay`` after the run's stop (Slurm's End, from the reconciler), but a
    node's last batch can come later (a loaded node, an agent that was away): the OOM kill counted as
    the job ended arrives with that node's epilog. The summary made without it is dropped with its
    findings when that epilog's STOP arrives, and the next pass makes it again with everything."""
    store = SqliteStore(tmp_path / "j.db")
    store.open()
    db = db_of(store)
    try:
        profile = {"alloc_cpus": 1.0, "mem_peak_bytes": 99e6, "mem_limit_bytes": 100e6, "oom_kills": 0.0}
        late, first = Agent(db, "n1"), Agent(db, "n2")
        for a in (late, first):
            a.event(pb.JobEvent.START, 30, START, num_nodes=2, cpus_on_node=1)
            a.samples(30, [(T0 + s * 1000, {**profile, "cpu_user_seconds": 0.5 * s}) for s in range(0, 11)])
        first.event(pb.JobEvent.STOP, 30, START + 11, state="OUT_OF_MEMORY")
        run = int(db.execute("SELECT run_id FROM jobs WHERE job_id = 30").fetchone()[0])
        assert await summarize_pass(store, START + 20, 3, Thresholds()) == 1
        early = load_summary(db, run)
        assert early is not None and _rules(early) == {"memory_near_limit"}
        assert [t.name for t in job_tags(db, run)] == ["memory_near_limit"]

        late.samples(30, [(T0 + 11_000, {"oom_kills": 1.0})])  # the node's final reading, then its STOP
        late.event(pb.JobEvent.STOP, 30, START + 11, state="OUT_OF_MEMORY")
        assert load_summary(db, run) is None and job_tags(db, run) == []
        assert await summarize_pass(store, START + 30, 3, Thresholds()) == 1
        again = load_summary(db, run)
        assert again is not None and _rules(again) == {"oom_killed"}
        assert [t.name for t in job_tags(db, run)] == ["oom_killed"]
        assert await summarize_pass(store, START + 40, 3, Thresholds()) == 0  # done: not made again
    finally:
        store.close()
