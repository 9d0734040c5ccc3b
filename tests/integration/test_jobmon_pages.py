"""What JobMon's real front end reads, through the real path: a collector process fed over gRPC by node
streams (as agents send: hello, job events, batches of samples with known values), read over HTTP and
WebSocket with the session cookie its browser sends.

Facts about the front end (its source, Cranken/JobMon): the job page splits ``Metadata.NodeList`` on
``|`` and draws one series per node; it shows "No data" when ``MetricData`` is null; its Quantile View
reads ``QuantileData[].Data[quantile]``; the job list draws each finished job's radar chart from
``Jobs[].Data``; the search page reads JobMetadata[], JobTag[] or string[], each possibly null; the
live page speaks Type 1/2/3 frames on WS /api/live/{id}. See docs/compat/jobmon.md.
"""

from __future__ import annotations

import asyncio
import json
import math
import queue
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
import websockets
from jobpulse.collector.store.migrations import JOB_SAMPLE_COLUMNS
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc
from support import Collector, start_collector, stop, unique_job_id, wait_for

PASSWORD = "pages-password-1"
NOW = int(time.time())
T = NOW - 600 - NOW % 10  # first sample: on a 10 s boundary, so each sample is one chart point
GIB = 2**30
STEPS = 6  # samples per node, 10 s apart: T .. T+50


class NodeStream:
    """One node's gRPC stream, as its agent keeps it: a hello, then batches, each acknowledged."""

    def __init__(self, target: str, node: str) -> None:
        self.node = node
        self.seq = 0
        self.outbox: queue.Queue[pb.AgentMessage | None] = queue.Queue()
        self.channel = grpc.insecure_channel(target)
        self.replies: Iterator[pb.CollectorMessage] = pb_grpc.IngestStub(self.channel).Stream(
            iter(self.outbox.get, None)
        )
        hello = pb.Hello(node=node, cluster="alpha", stream_id=secrets.token_hex(8), cpus=8, tick_seconds=10)
        self.outbox.put(pb.AgentMessage(hello=hello))
        next(self.replies)

    def send(self, batch: pb.Batch) -> None:
        self.seq += 1
        batch.seq = self.seq
        self.outbox.put(pb.AgentMessage(batch=batch))
        reply = next(self.replies)
        assert reply.WhichOneof("body") == "ack" and reply.ack.seq == self.seq, reply

    def start(self, job: int, user: str, start: int) -> None:
        meta = pb.JobMeta(job_id=str(job), user=user, uid=1000, nodelist=self.node, start_time=start)
        self.send(pb.Batch(events=[pb.JobEvent(kind=pb.JobEvent.START, time_ms=start * 1000, meta=meta)]))

    def stop(self, job: int, end: int) -> None:
        meta = pb.JobMeta(job_id=str(job), state="COMPLETED", end_time=end)
        self.send(pb.Batch(events=[pb.JobEvent(kind=pb.JobEvent.STOP, time_ms=end * 1000, meta=meta)]))

    def samples(self, job: int, rows: list[tuple[int, dict[str, float]]]) -> None:
        """rows: (time s, {metric column: value}); other columns are not measured (NaN)."""
        batch = pb.Batch()
        for ts, values in rows:
            batch.jobs.job_id.append(str(job))
            batch.jobs.step.append("")
            batch.jobs.time_ms.append(ts * 1000)
            for column in JOB_SAMPLE_COLUMNS:
                getattr(batch.jobs, column).append(values.get(column, math.nan))
        self.send(batch)

    def close(self) -> None:
        self.outbox.put(None)
        self.channel.close()


def _add_user(collector: Collector, name: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jobpulse.collector.cli",
            "add-user",
            name,
            "--state-dir",
            str(collector.state),
        ],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


def _cookie(collector: Collector, user: str, password: str = PASSWORD) -> str:
    """The session cookie as a browser sends it back after logging in (name=value from Set-Cookie)."""
    response = httpx.post(
        collector.url + "/api/login", json={"Username": user, "Password": password}, timeout=10
    )
    response.raise_for_status()
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("Authorization="))
    return cookie.split(";", 1)[0]


class Browser:
    """Requests as JobMon's page makes them: the session cookie, no Authorization header, no Accept."""

    def __init__(self, collector: Collector, cookie: str) -> None:
        self.collector, self.cookie = collector, cookie

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(
            self.collector.url + path, params=params, headers={"Cookie": self.cookie}, timeout=10
        )

    def post(self, path: str, body: dict[str, Any], **params: Any) -> httpx.Response:
        return httpx.post(
            self.collector.url + path, params=params, json=body, headers={"Cookie": self.cookie}, timeout=10
        )

    def ws_url(self, job: int) -> str:
        return f"ws://127.0.0.1:{self.collector.http_port}/api/live/{job}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One collector with: a finished 3-node job of alice's (known values), a running 2-node job of
    alice's, a finished job without any sample, and a finished job of bob's."""
    state = tmp_path_factory.mktemp("jobmon-pages")
    collector = start_collector(
        state / "collector",
        env={"JOBPULSE_SUMMARY_INTERVAL": "0.5", "JOBPULSE_SUMMARY_DELAY": "3"},  # after every node's batches
    )
    for user in ("alice", "bob"):
        _add_user(collector, user)
    nodes = {n: NodeStream(collector.grpc_target, n) for n in ("jm-a", "jm-b", "jm-c")}
    three, running, empty, bobs = (unique_job_id() for _ in range(4))
    factor = {"jm-a": 1.0, "jm-b": 2.0, "jm-c": 4.0}
    try:
        for name, stream in nodes.items():  # at step i the nodes measure i, 2i and 4i cores
            stream.start(three, "alice", T - 5)
            rows = [
                (
                    T + 10 * i,
                    {  # what an agent reads on a cgroup v1 Slurm node: CPU and memory, no blkio, no GPU
                        "cpu_cores": i * factor[name],
                        "alloc_cpus": 8.0,
                        "mem_current_bytes": GIB * (i + 1),
                        "mem_peak_bytes": GIB * (i + 1),
                        "mem_limit_bytes": 16 * GIB,
                    },
                )
                for i in range(STEPS)
            ]
            stream.samples(three, rows)
            stream.stop(three, T + 10 * STEPS - 5)
        for name in ("jm-a", "jm-b"):
            nodes[name].start(running, "alice", T - 5)
            nodes[name].samples(running, [(T + 10 * i, {"cpu_cores": factor[name]}) for i in range(STEPS)])
        nodes["jm-c"].start(empty, "alice", T - 5)
        nodes["jm-c"].stop(empty, T + 30)
        nodes["jm-c"].start(bobs, "bob", T - 5)
        nodes["jm-c"].samples(bobs, [(T, {"cpu_cores": 1.0})])
        nodes["jm-c"].stop(bobs, T + 30)
        yield {
            "collector": collector,
            "nodes": nodes,
            "three": three,
            "running": running,
            "empty": empty,
            "bobs": bobs,
            "alice": Browser(collector, _cookie(collector, "alice")),
            "bob": Browser(collector, _cookie(collector, "bob")),
            "admin": Browser(collector, _cookie(collector, "admin", collector.admin_password)),
        }
    finally:
        for stream in nodes.values():
            stream.close()
        stop(collector.proc)


def _series(metric_data: list[dict[str, Any]], guid: str) -> dict[str, list[float]]:
    metric = next(m for m in metric_data if m["Config"]["GUID"] == guid)
    return {node: [p["_value"] for p in points] for node, points in metric["Data"].items()}


def test_finished_three_node_job_page(site: dict[str, Any]) -> None:
    page = site["alice"].get(f"/api/job/{site['three']}").json()
    meta = page["Metadata"]
    assert meta["NodeList"] == "jm-a|jm-b|jm-c" and meta["NumNodes"] == 3  # the page splits on "|"
    assert meta["StopTime"] == T + 10 * STEPS - 5 and meta["IsRunning"] is False
    assert _series(page["MetricData"], "cpu_cores") == {
        "jm-a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        "jm-b": [0.0, 2.0, 4.0, 6.0, 8.0, 10.0],
        "jm-c": [0.0, 4.0, 8.0, 12.0, 16.0, 20.0],
    }
    cores = next(m for m in page["MetricData"] if m["Config"]["GUID"] == "cpu_cores")
    assert cores["Config"]["Type"] == "node"  # the granularity, not a category
    assert page["SampleInterval"] == 10 and page["SampleIntervals"] == [10]  # whole seconds
    # Quantile View: at each step, quantiles of the three nodes' i, 2i, 4i (linear between ranks)
    quantiles = next(q for q in page["QuantileData"] if q["Config"]["GUID"] == "cpu_cores")
    assert quantiles["Quantiles"] == ["0.25", "0.5", "0.75"]
    assert set(quantiles["Data"]) == {"0.25", "0.5", "0.75"}
    for q, factor in (("0.25", 1.5), ("0.5", 2.0), ("0.75", 3.0)):
        points = quantiles["Data"][q]
        assert [p["_value"] for p in points] == [i * factor for i in range(STEPS)], q
        assert {p["_field"] for p in points} == {q}
    assert [p["_time"] for p in quantiles["Data"]["0.5"]] == [p["_time"] for p in cores["Data"]["jm-a"]]


def test_job_list_radar_data_is_the_summary(site: dict[str, Any]) -> None:
    alice, three = site["alice"], site["three"]

    def summarized() -> dict[str, Any] | None:
        summary: dict[str, Any] | None = alice.get(f"/api/job/{three}").json()["Summary"]
        return summary

    summary = wait_for(summarized, 30, "the summary of the finished job")
    listing = alice.get("/api/jobs", NumGpus="0,224", NumNodes="1,192").json()  # as the page asks
    jobs = {j["Id"]: j for j in listing["Jobs"]}
    radar = {d["Config"]["GUID"]: d for d in jobs[three]["Data"]}
    assert set(radar) <= set(listing["Config"]["RadarChartMetrics"]) and "cpu_cores" in radar
    # a CPU job without I/O or GPU figures still has three axes (two would draw a line, not a shape)
    assert set(radar) == {"cpu_cores", "mem_current_bytes", "mem_peak_bytes"}
    assert radar["mem_peak_bytes"]["Max"] == STEPS * GIB
    assert radar["mem_peak_bytes"]["Config"]["MaxPerNode"] == 16 * GIB  # peak against the memory limit
    figures = summary["metrics"]["cpu_cores"]
    assert (radar["cpu_cores"]["Mean"], radar["cpu_cores"]["Max"]) == (figures["mean"], figures["max"])
    assert radar["cpu_cores"]["Mean"] == pytest.approx(7 * sum(range(STEPS)) / (3 * STEPS))
    assert radar["cpu_cores"]["Max"] == 20.0
    assert radar["cpu_cores"]["Config"]["MaxPerNode"] == 8.0  # what a node was given: the radar's scale
    assert jobs[site["running"]]["Data"] is None  # JobMon computes it when a job ends
    assert jobs[site["empty"]]["Data"] is None  # nothing measured: no figures
    assert site["bobs"] not in jobs


def test_running_two_node_job_page(site: dict[str, Any]) -> None:
    page = site["alice"].get(f"/api/job/{site['running']}").json()
    meta = page["Metadata"]
    assert meta["NodeList"] == "jm-a|jm-b" and meta["IsRunning"] is True
    assert abs(meta["StopTime"] - time.time()) < 30  # now, not 0
    assert _series(page["MetricData"], "cpu_cores") == {"jm-a": [1.0] * STEPS, "jm-b": [2.0] * STEPS}
    assert page["QuantileData"] is None  # as JobMon: no Quantile View while running
    # one node selected: the other stays a key, since the live page appends pushed samples to it
    narrowed = site["alice"].get(f"/api/job/{site['running']}", node="jm-a").json()
    assert _series(narrowed["MetricData"], "cpu_cores") == {"jm-a": [1.0] * STEPS, "jm-b": []}


def test_job_without_data_answers_null(site: dict[str, Any]) -> None:
    response = site["alice"].get(f"/api/job/{site['empty']}")
    assert response.status_code == 200
    page = response.json()
    assert page["MetricData"] is None and page["QuantileData"] is None  # the page then says "No data"
    assert '"MetricData":null' in response.text


def test_another_users_job_is_a_404_the_page_survives(site: dict[str, Any]) -> None:
    """JobMon's page deletes its login cookie on 401/403 and crashes on a JSON body without Metadata;
    another user's job answers as a missing one: 404, plain text."""
    bob, admin, three = site["bob"], site["admin"], site["three"]
    other = bob.get(f"/api/job/{three}")
    missing = bob.get("/api/job/1")
    assert other.status_code == missing.status_code == 404
    assert other.headers["content-type"].startswith("text/plain")
    assert other.text.replace(str(three), "N") == missing.text.replace("1", "N")
    with pytest.raises(json.JSONDecodeError):
        other.json()
    metric = bob.get(f"/api/metric/{three}", metric="cpu_cores", aggFn="mean")
    assert metric.status_code == 404 and metric.headers["content-type"].startswith("text/plain")
    assert admin.get(f"/api/job/{three}").status_code == 200


def test_metric_route_matches_the_page(site: dict[str, Any]) -> None:
    alice = site["alice"]
    metric = alice.get(
        f"/api/metric/{site['three']}", metric="cpu_cores", aggFn="max", sampleInterval="10"
    ).json()
    assert metric["Config"]["AggFn"] == "max" and metric["Config"]["Type"] == "node"
    assert {n: [p["_value"] for p in pts] for n, pts in metric["Data"].items()}["jm-c"] == [
        0.0,
        4.0,
        8.0,
        12.0,
        16.0,
        20.0,
    ]


def test_search_routes(site: dict[str, Any]) -> None:
    alice, bob, admin = site["alice"], site["bob"], site["admin"]
    three, bobs = site["three"], site["bobs"]
    found = alice.get(f"/api/search/job/{three}").json()
    assert [j["Id"] for j in found] == [three] and found[0]["UserName"] == "alice"
    assert {j["Id"] for j in alice.get("/api/search/job/alice").json()} == {
        three,
        site["running"],
        site["empty"],
    }
    assert alice.get(f"/api/search/job/{bobs}").json() is None  # bob's job: not alice's to find
    assert alice.get("/api/search/job/bob").json() is None
    assert [j["Id"] for j in admin.get(f"/api/search/job/{bobs}").json()] == [bobs]
    tagged = alice.post("/api/tags/add_tag", {"Name": "pages-keep"}, job=str(three))
    assert tagged.status_code == 200, tagged.text
    tags = alice.get("/api/search/tag/pages-ke").json()
    assert [(t["Name"], t["CreatedBy"]) for t in tags] == [("pages-keep", "alice")]
    assert bob.get("/api/search/tag/pages-ke").json() is None  # on alice's jobs only
    assert [t["Name"] for t in admin.get("/api/search/tag/keep").json()] == ["pages-keep"]
    assert admin.get("/api/search/user/lic").json() == ["alice"]
    assert admin.get("/api/search/user/nobody-such").json() is None
    assert alice.get("/api/search/user/lic").status_code == 403


def test_live_protocol_answers_type_1_and_pushes_type_3(site: dict[str, Any]) -> None:
    """As the page does: open the socket with the session cookie, ask for an earlier window (Type 1),
    receive it (Type 2), then receive each new sample as it is committed (Type 3)."""
    alice, running, stream = site["alice"], site["running"], site["nodes"]["jm-a"]

    async def watch() -> tuple[dict[str, Any], dict[str, Any]]:
        async with websockets.connect(
            alice.ws_url(running), additional_headers={"Cookie": alice.cookie}, open_timeout=10
        ) as ws:
            await ws.send(json.dumps({"StartTime": T - 100, "StopTime": int(time.time()), "Type": 1}))
            loaded = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await asyncio.to_thread(stream.samples, running, [(int(time.time()), {"cpu_cores": 99.0})])
            pushed = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return loaded, pushed

    loaded, pushed = asyncio.run(watch())
    assert loaded["Type"] == 2
    assert _series(loaded["MetricData"], "cpu_cores") == {"jm-a": [1.0] * STEPS, "jm-b": [2.0] * STEPS}
    assert pushed["Type"] == 3
    assert _series(pushed["MetricData"], "cpu_cores") == {"jm-a": [99.0]}  # the node that sent it
    assert pushed["MetricData"][0]["Data"]["jm-a"][0]["hostname"] == "jm-a"


def test_live_protocol_refuses_another_users_job(site: dict[str, Any]) -> None:
    bob = site["bob"]

    async def attempt() -> int | None:
        try:
            async with websockets.connect(
                bob.ws_url(site["running"]), additional_headers={"Cookie": bob.cookie}, open_timeout=10
            ) as ws:
                await ws.recv()
        except websockets.exceptions.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        return None

    assert asyncio.run(attempt()) == 4404
