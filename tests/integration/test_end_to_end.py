"""A real collector, a real agent and a real job in a real cgroup, over loopback."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from support import (
    Collector,
    cgroup_v1_writable,
    raw_cpu_seconds,
    raw_series,
    running,
    start_agent,
    start_collector,
    unique_job_id,
    wait_for,
)

BURN = """
import time
block = bytearray(b"x") * (200 * 1024 * 1024)
while time.process_time() < 1.5:
    pass
time.sleep(1.0)
"""


@pytest.fixture
def collector(tmp_path: Path) -> Collector:
    c = start_collector(tmp_path / "collector")
    yield c
    from support import stop

    stop(c.proc)


def _exec(state: Path, job_id: str, code: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jobpulse.agent.cli",
            "exec",
            "--state-dir",
            str(state),
            "--socket",
            str(state / "agent.sock"),
            "--job-id",
            job_id,
            "--",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )


def _finished_job(collector: Collector, job_id: str) -> dict:
    def done() -> dict | None:
        response = collector.get(f"/api/job/{job_id}?raw=true")
        if response.status_code == 200 and response.json()["Metadata"]["IsRunning"] is False:
            return response.json()
        return None

    return wait_for(done, 20, f"job {job_id} to be recorded as finished")


@pytest.mark.cgroup
def test_job_in_real_cgroup_is_measured_stored_and_served(tmp_path: Path, collector: Collector) -> None:
    reason = cgroup_v1_writable()
    job = unique_job_id()
    if reason:
        pytest.skip(reason)
    agent = start_agent(tmp_path / "agent", collector.grpc_target, "--cluster", "test")
    with running(agent):
        result = _exec(tmp_path / "agent", str(job), BURN)
        assert result.returncode == 0, result.stderr.decode()
        assert b"(cgroup)" in result.stderr, "exec should have used a real cgroup here"
        doc = _finished_job(collector, str(job))
    meta = doc["Metadata"]
    assert meta["Id"] == job and meta["ClusterId"] == "test" and meta["ExitCode"] == 0
    assert meta["StopTime"] >= meta["StartTime"] > 0
    assert len(raw_series(doc, "cpu_user_seconds")) >= 2, doc["MetricData"]
    assert raw_cpu_seconds(doc) == pytest.approx(1.5, rel=0.2)
    peak = max(raw_series(doc, "mem_peak_bytes"))
    assert 190 * 2**20 < peak < 300 * 2**20
    cpu_series = {m["Config"]["GUID"]: m["Data"] for m in doc["MetricData"]}["cpu_cores"]

    # cores used over time integrates back to the CPU-seconds counter (robust on a loaded machine)
    def at(point: dict) -> float:
        return datetime.fromisoformat(point["_time"].replace("Z", "+00:00")).timestamp()

    points = sorted((at(p), p["_value"]) for node_points in cpu_series.values() for p in node_points)
    first = min(
        at(p)
        for m in doc["MetricData"]
        if m["Config"]["GUID"] == "cpu_user_seconds"
        for node_points in m["Data"].values()
        for p in node_points
    )
    starts = [first, *[t for t, _ in points[:-1]]]
    integral = sum(v * (t - t0) for (t, v), t0 in zip(points, starts, strict=True))
    assert integral == pytest.approx(raw_cpu_seconds(doc), rel=0.25)
    listed = collector.get("/api/jobs").json()["Jobs"]
    assert [j["Id"] for j in listed] == [job]


def test_job_without_cgroup_is_tracked_by_process_tree(tmp_path: Path, collector: Collector) -> None:
    agent = start_agent(
        tmp_path / "agent", collector.grpc_target, "--cgroup-root", str(tmp_path / "nocgroup")
    )
    (tmp_path / "nocgroup").mkdir()
    with running(agent):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "jobpulse.agent.cli",
                "exec",
                "--state-dir",
                str(tmp_path / "agent"),
                "--socket",
                str(tmp_path / "agent" / "agent.sock"),
                "--cgroup-root",
                str(tmp_path / "nocgroup"),
                "--job-id",
                "7",
                "--",
                sys.executable,
                "-c",
                BURN,
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert b"process tree" in result.stderr
        doc = _finished_job(collector, "7")
    assert raw_cpu_seconds(doc) == pytest.approx(1.5, rel=0.2)


def test_failing_job_records_its_exit_code(tmp_path: Path, collector: Collector) -> None:
    agent = start_agent(tmp_path / "agent", collector.grpc_target)
    with running(agent):
        job = unique_job_id()
        result = _exec(tmp_path / "agent", str(job), "import sys; sys.exit(3)")
        assert result.returncode == 3
        doc = _finished_job(collector, str(job))
    assert doc["Metadata"]["ExitCode"] == 3
    assert doc["Metadata"]["State"] == "FAILED"


def test_ping_and_openapi_docs(collector: Collector) -> None:
    assert collector.get("/api/ping", auth=False).json()["timestamp"] > 0
    assert collector.get("/api/jobs", auth=False).status_code == 401
    schema = collector.get("/docs/openapi.json", auth=False).json()
    assert "/api/job/{job_id}" in schema["paths"]
    assert collector.get("/docs", auth=False).status_code == 200
    missing = collector.get("/api/job/123456")
    assert missing.status_code == 404 and "123456" in missing.text  # plain text: see docs/compat/jobmon.md
    asked = collector.get("/api/job/123456", headers={"Accept": "application/json"})
    assert asked.status_code == 404 and "123456" in asked.json()["detail"]
