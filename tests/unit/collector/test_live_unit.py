"""WS /api/live/{id} (JobMon's protocol) and /api/live/{id}/raw (jobpulse's frames): access rules and
message flow, fed through the ingest hook (LiveFeed.on_batches) or the event bus."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from jobpulse.collector.app import create_app
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.auth.passwords import hash_password
from jobpulse.collector.services.events import BatchStored, JobEnded
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient
from seed import add_job, add_samples
from storehelp import db_of, run_async


def _batch(job_id: int, seq: int, stop: bool = False) -> pb.Batch:
    batch = pb.Batch(seq=seq)
    now = int(time.time() * 1000)
    for step in ("", "batch"):
        batch.jobs.job_id.append(str(job_id))
        batch.jobs.step.append(step)
        batch.jobs.time_ms.append(now)
        for column in JOB_SAMPLE_COLUMNS:
            getattr(batch.jobs, column).append(math.inf if column == "mem_limit_bytes" else float(seq))
    if stop:
        batch.events.append(
            pb.JobEvent(kind=pb.JobEvent.STOP, time_ms=now, meta=pb.JobMeta(job_id=str(job_id)))
        )
    return batch


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = CollectorSettings(state_dir=tmp_path, admin_password="admin-pw-123")
    store = SqliteStore(settings.database_path)
    store.open()
    run_async(ensure_admin(store, settings))
    users.upsert_user(db_of(store), "alice", ["user"], hash_password("alice-password"))
    add_job(db_of(store), 301, "alice", start=int(time.time()), stop=None)
    add_job(db_of(store), 302, "bob", start=int(time.time()), stop=None)
    add_job(db_of(store), 303, "alice", start=int(time.time()) - 60, stop=int(time.time()))
    with TestClient(app=create_app(store, settings)) as c:
        yield c
    store.close()


def _login(client: TestClient, user: str, password: str) -> None:
    assert client.post("/api/login", json={"Username": user, "Password": password}).status_code == 200


def test_owner_receives_whole_job_samples_then_end(client: TestClient) -> None:
    _login(client, "alice", "alice-password")  # the session cookie authenticates the WebSocket
    live = client.app.state.live_raw

    def feed(batch: pb.Batch) -> None:  # as the ingest path does: on the app's event loop
        client.blocking_portal.call(live.on_batches, "n1", [batch])

    with client.websocket_connect("/api/live/301/raw") as ws:
        assert ws.receive_json() == {"type": "hello", "job": 301, "running": True}
        feed(_batch(301, 1))
        feed(_batch(999, 2))  # another job's sample: not on this channel
        feed(_batch(301, 3, stop=True))
        first = ws.receive_json()
        assert first["type"] == "sample" and first["node"] == "n1" and first["values"]["cpu_cores"] == 1.0
        assert first["values"]["mem_limit_bytes"] is None  # +Inf is not JSON
        assert ws.receive_json()["values"]["cpu_cores"] == 3.0  # step rows are not sent
        end = ws.receive_json()
        assert end["type"] == "end" and end["job"] == 301
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000


def test_finished_job_ends_at_once(client: TestClient) -> None:
    _login(client, "alice", "alice-password")
    with client.websocket_connect("/api/live/303/raw") as ws:
        assert ws.receive_json()["running"] is False
        assert ws.receive_json()["type"] == "end"


@pytest.mark.parametrize("route", ["", "/raw"])
@pytest.mark.parametrize("job", [302, 404])
def test_other_users_job_and_missing_job_look_the_same(client: TestClient, job: int, route: str) -> None:
    _login(client, "alice", "alice-password")
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(f"/api/live/{job}{route}") as ws,
    ):
        ws.receive_json()
    assert closed.value.code == 4404 and closed.value.detail == f"job {job} not found"


def test_admin_may_watch_any_job_and_anonymous_may_not(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/api/live/302/raw") as ws:
        ws.receive_json()
    _login(client, "admin", "admin-pw-123")
    with client.websocket_connect("/api/live/302/raw") as ws:
        assert ws.receive_json()["running"] is True


def test_a_broken_batch_never_breaks_ingest(client: TestClient) -> None:
    bad = pb.Batch(seq=1)
    bad.jobs.job_id.append("not-a-number")
    bad.jobs.step.append("")
    bad.jobs.time_ms.append(1)
    client.app.state.live.on_batches("n1", [bad])  # logged, not raised


def test_unwatched_jobs_cost_no_per_sample_work(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest hook runs for every message of every agent: samples of a job nobody watches are not
    encoded or published at all; while someone watches, they are; once they leave, they no longer are."""
    live = client.app.state.live_raw
    sent: list[tuple[bytes, list[str]]] = []
    publish = live.plugin.publish

    def recording_publish(data: bytes, channels: list[str]) -> None:  # the plugin's public publish path
        sent.append((data, list(channels)))
        publish(data, channels=channels)

    monkeypatch.setattr(live.plugin, "publish", lambda data, channels: recording_publish(data, channels))
    client.blocking_portal.call(live.on_batches, "n1", [_batch(301, 1), _batch(302, 2, stop=True)])
    assert sent == [] and live.published == 0 and live.watchers(301) == 0
    _login(client, "alice", "alice-password")
    with client.websocket_connect("/api/live/301/raw") as ws:
        assert ws.receive_json()["type"] == "hello"
        assert live.watchers(301) == 1
        client.blocking_portal.call(live.on_batches, "n1", [_batch(301, 3), _batch(302, 4)])
        assert ws.receive_json()["values"]["cpu_cores"] == 3.0
    assert live.published == 1  # job 301's whole-job row; nobody watched 302
    assert [channels for _, channels in sent] == [["job:301"]]
    deadline = time.monotonic() + 10
    while live.watchers(301) and time.monotonic() < deadline:  # the handler sees the disconnect
        time.sleep(0.01)
    assert live.watchers(301) == 0
    client.blocking_portal.call(live.on_batches, "n1", [_batch(301, 5, stop=True)])
    assert len(sent) == 1 and live.published == 1  # the client left: nothing more is published


def test_bus_events_reach_the_live_route(client: TestClient) -> None:
    """The route's frames are made from the event bus's events, whoever published them."""
    _login(client, "alice", "alice-password")
    bus = client.app.state.events
    assert not bus.wants(JobEnded)  # nobody watches: the feed is not subscribed
    with client.websocket_connect("/api/live/301/raw") as ws:
        assert ws.receive_json()["type"] == "hello"
        assert bus.wants(BatchStored) and bus.wants(JobEnded)
        client.blocking_portal.call(bus.publish, BatchStored("n7", frozenset({301}), [_batch(301, 4)]))
        sample = ws.receive_json()
        assert (sample["type"], sample["job"], sample["node"]) == ("sample", 301, "n7")
        assert sample["values"]["cpu_cores"] == 4.0
        client.blocking_portal.call(bus.publish, JobEnded(301, "n7", "FAILED", time.time()))
        end = ws.receive_json()
        assert (end["type"], end["job"], end["node"], end["state"]) == ("end", 301, "n7", "FAILED")
        assert set(end) == {"type", "job", "node", "state", "published_ms"}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1000
    deadline = time.monotonic() + 10
    while bus.wants(JobEnded) and time.monotonic() < deadline:  # the handler sees the disconnect
        time.sleep(0.01)
    assert not bus.wants(JobEnded)  # the last watcher left: the feed unsubscribed


# -- JobMon's protocol on /api/live/{id} ------------------------------------------------------------------
def test_jobmon_protocol_pushes_type_3_with_the_new_samples_per_node(client: TestClient) -> None:
    """JobMon's page appends each pushed MetricData's Data[node] points to its own series of the metric
    (matched by Config.Measurement); nothing else is sent unasked, and the socket closes when the job ends."""
    _login(client, "alice", "alice-password")  # the session cookie, as the page's same-origin socket sends
    bus = client.app.state.events
    live = client.app.state.live
    with client.websocket_connect("/api/live/301") as ws:
        # JobMon's protocol has no hello: an answered load request says the route is subscribed
        ws.send_json({"StartTime": 0, "StopTime": 1, "Type": 1})
        assert ws.receive_json() == {"Type": 2, "MetricData": []}
        assert live.watchers(301) == 1
        client.blocking_portal.call(live.on_batches, "n1", [_batch(301, 5)])
        frame = ws.receive_json()
        assert frame["Type"] == 3 and set(frame) == {"Type", "MetricData"}
        by_measurement = {m["Config"]["Measurement"]: m for m in frame["MetricData"]}
        cores = by_measurement["cpu_cores"]
        assert cores["Config"]["GUID"] == "cpu_cores" and cores["Config"]["Type"] == "node"
        assert list(cores["Data"]) == ["n1"] and len(cores["Data"]["n1"]) == 1  # the step row is not sent
        point = cores["Data"]["n1"][0]
        assert point["_value"] == 5.0 and point["hostname"] == "n1" and point["_time"].endswith("Z")
        assert "mem_limit_bytes" not in by_measurement  # +Inf is no value
        client.blocking_portal.call(bus.publish, JobEnded(301, "n1", "COMPLETED", time.time()))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()  # the end is not a JobMon frame: the socket closes
        assert closed.value.code == 1000


def test_jobmon_protocol_answers_a_load_request_with_type_2(client: TestClient) -> None:
    """The page asks for an earlier window ({"Type": 1, "StartTime", "StopTime"}) when its user widens
    the time range; the answer holds the stored samples of that window only, before StopTime."""
    store = client.app.state.store
    start = int(db_of(store).execute("SELECT start_time FROM jobs WHERE job_id = 301").fetchone()[0])
    add_samples(db_of(store), 301, ("n1",), start=start + 1, count=2, tick=10.0)  # 10 s apart
    _login(client, "alice", "alice-password")
    with client.websocket_connect("/api/live/301") as ws:
        ws.send_text("not json")  # ignored, as JobMon ignores what it cannot read
        ws.send_json({"Type": 7})  # an unknown type: ignored
        ws.send_json({"StartTime": start - 3600, "StopTime": start + 3600, "Type": 1})
        answer = ws.receive_json()
        assert answer["Type"] == 2
        cores = next(m for m in answer["MetricData"] if m["Config"]["GUID"] == "cpu_cores")
        assert [p["_value"] for p in cores["Data"]["n1"]] == [0.0, 1.0]  # sample_values: i % 8 on n1
        ws.send_json({"StartTime": start - 7200, "StopTime": start - 3600, "Type": 1})
        assert ws.receive_json() == {"Type": 2, "MetricData": []}  # nothing then: [], never null


def test_jobmon_protocol_closes_for_a_finished_job(client: TestClient) -> None:
    _login(client, "alice", "alice-password")
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/api/live/303") as ws:
        ws.receive_json()
    assert closed.value.code == 1000
