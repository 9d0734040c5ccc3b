"""GET /api/job/{id} carries the stored summary, its findings and the job's tags."""

from __future__ import annotations

from pathlib import Path

from jobpulse.collector.app import create_app
from jobpulse.collector.findings import Thresholds
from jobpulse.collector.services.summaries import summarize_run
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from litestar.testing import TestClient
from storehelp import T0, Agent, db_of


def test_job_response_has_summary_and_findings(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a.db")
    store.open()
    a = Agent(db_of(store), "n1")
    a.event(pb.JobEvent.START, 3, T0 // 1000, cpus_on_node=16)
    a.samples(
        3, [(T0 + s * 1000, {"cpu_user_seconds": 0.5 * s, "alloc_cpus": 16.0}) for s in range(0, 3601, 60)]
    )
    a.event(pb.JobEvent.STOP, 3, T0 // 1000 + 3600)
    users.upsert_user(db_of(store), "admin", ["admin"])  # a key works while its owner holds its role
    key, _ = users.create_api_key(db_of(store), "admin", "admin", "test")
    settings = CollectorSettings(state_dir=tmp_path)
    with TestClient(app=create_app(store, settings)) as client:
        client.headers["X-API-Key"] = key
        before = client.get("/api/job/3").json()
        assert before["Summary"] is None and before["Findings"] == [] and before["Tags"] == []
        client.blocking_portal.call(summarize_run, store, 1, T0 / 1000 + 4000, Thresholds())
        body = client.get("/api/job/3").json()
    assert body["Summary"]["cpu_efficiency"] == 0.5 / 16
    assert [(f["rule"], f["threshold"]) for f in body["Findings"]] == [("low_cpu_efficiency", 0.25)]
    # the shapes the job page reads: each finding's four fields; the summary without them, with its radar
    assert [sorted(f) for f in body["Findings"]] == [["hint", "rule", "threshold", "value"]]
    assert "findings" not in body["Summary"] and "metrics" in body["Summary"]
    assert [t["Name"] for t in body["Tags"]] == ["low_cpu_efficiency"]
    store.close()
