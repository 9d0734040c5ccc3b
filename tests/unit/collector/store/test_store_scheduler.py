"""The storage jobs run on APScheduler's AsyncIOScheduler in the caller's event loop, writing through the store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from jobpulse.collector.scheduler import start_scheduler, storage_jobs
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore, connect
from jobpulse.proto.v1 import ingest_pb2 as pb
from storehelp import Agent, db_of, minute_rows


async def test_scheduled_rollup_summary_and_maintenance(tmp_path: Path) -> None:
    settings = CollectorSettings(rollup_interval=0.2, summary_interval=0.2, summary_delay=0, rollup_lag=0)
    store = SqliteStore(tmp_path / "c.db")
    store.open()
    now_s = int(time.time())
    start = (now_s - 600) // 60 * 60
    agent = Agent(db_of(store), "n1")
    agent.event(pb.JobEvent.START, 7, start, cpus_on_node=2)
    agent.samples(7, [((start + s) * 1000, {"cpu_cores": 1.0, "alloc_cpus": 2.0}) for s in range(0, 300, 10)])
    agent.event(pb.JobEvent.STOP, 7, start + 300)
    scheduler = start_scheduler(store, settings)
    watcher = connect(store.path)  # its own connection: the scheduler's jobs use the store's writer
    try:
        for _ in range(50):
            await asyncio.sleep(0.1)
            done = (
                len(minute_rows(watcher)),
                watcher.execute("SELECT count(*) FROM job_summaries").fetchone()[0],
            )
            if done[0] and done[1]:
                break
        assert done[0] == 5 and done[1] == 1
        assert {j.id for j in scheduler.get_jobs()} == {
            "rollup",
            "retention",
            "summaries",
            "checkpoint",
            "optimize",
        }
        jobs = storage_jobs(store, settings)
        await jobs["checkpoint"][1]()  # a failing job would only log: check the effect directly too
        await jobs["optimize"][1]()
    finally:
        scheduler.shutdown(wait=False)
        watcher.close()
        store.close()
