"""Job identity through the real path: hooks and agents on several nodes, one collector over gRPC.

A multi-node job is reported by each of its nodes' agents; its node list is their union. Two clusters
reuse the same job number at the same time; each run's page shows only its own cluster's samples.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import Collector, run_hook, start_agent, start_collector, stop, unique_job_id, wait_for


@pytest.fixture
def collector(tmp_path: Path) -> Collector:
    c = start_collector(tmp_path / "collector")
    yield c
    stop(c.proc)


def _exec(state: Path, job_id: int, seconds: float, node: str) -> subprocess.Popen[bytes]:
    """A real job on ``node``, tracked by that node's agent (its process tree: the cgroup root given is
    empty)."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobpulse.agent.cli",
            "exec",
            "--state-dir",
            str(state),
            "--socket",
            str(state / "agent.sock"),
            "--cgroup-root",
            str(state / "no-cgroups"),
            "--job-id",
            str(job_id),
            "--node",
            node,
            "--",
            sys.executable,
            "-c",
            code,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_multi_node_job_lists_every_reporting_node(tmp_path: Path, collector: Collector) -> None:
    job = unique_job_id()
    nodes = ["n1", "n2", "n3", "n4"]
    agents = {}
    try:
        for node in nodes:
            agents[node] = start_agent(
                tmp_path / node,
                collector.grpc_target,
                "--node",
                node,
                "--cluster",
                "alpha",
                "--cgroup-root",
                str(tmp_path / "empty"),
            )
        # Without PrologFlags, each node's prolog sees only the step's node list: its own name.
        for node in nodes:
            run_hook(
                "prolog",
                tmp_path / node,
                {
                    "SLURM_JOB_ID": str(job),
                    "SLURM_JOB_USER": "root",
                    "SLURM_JOB_UID": "0",
                    "SLURM_CLUSTER_NAME": "alpha",
                    "SLURM_NODELIST": node,
                    "SLURMD_NODENAME": node,
                    "SLURM_JOB_NUM_NODES": "4",
                },
            )

        def four() -> dict | None:
            response = collector.get(f"/api/job/{job}")
            meta = response.json()["Metadata"] if response.status_code == 200 else None
            return meta if meta and len(meta["Nodes"]) == 4 else None

        meta = wait_for(four, 30, "four nodes on the job")
        assert [n["Name"] for n in meta["Nodes"]] == nodes
        assert meta["NodeList"] == "n1|n2|n3|n4" and meta["HostList"] == "n[1-4]" and meta["NumNodes"] == 4
        for node in nodes:
            listed = collector.get("/api/jobs", params={"Node": node}).json()["Jobs"]
            assert [j["Id"] for j in listed] == [job], node
        # The epilog runs on every node with the job's full hostlist; the list stays the same.
        for node in nodes:
            run_hook(
                "epilog",
                tmp_path / node,
                {
                    "SLURM_JOB_ID": str(job),
                    "SLURM_CLUSTER_NAME": "alpha",
                    "SLURM_NODELIST": "n[1-4]",
                    "SLURMD_NODENAME": node,
                    "SLURM_JOB_EXIT_CODE2": "0:0",
                },
            )
        ended = wait_for(
            lambda: (m := collector.get(f"/api/job/{job}").json()["Metadata"])["IsRunning"] is False and m,
            30,
            "the job to end",
        )
        assert [n["Name"] for n in ended["Nodes"]] == nodes
        assert collector.get("/api/jobs", params={"IsRunning": "false"}).json()["Total"] == 1
    finally:
        for proc in agents.values():
            stop(proc)


def test_same_job_number_on_two_clusters_never_mixes_samples(tmp_path: Path, collector: Collector) -> None:
    job = unique_job_id()
    a = start_agent(
        tmp_path / "a",
        collector.grpc_target,
        "--node",
        "a1",
        "--cluster",
        "alpha",
        "--cgroup-root",
        str(tmp_path / "empty"),
        tick=0.3,
    )
    b = start_agent(
        tmp_path / "b",
        collector.grpc_target,
        "--node",
        "b1",
        "--cluster",
        "beta",
        "--cgroup-root",
        str(tmp_path / "empty"),
        tick=0.3,
    )
    try:
        first = _exec(tmp_path / "a", job, 4.0, "a1")  # cluster alpha's job J runs on ...
        wait_for(lambda: collector.get(f"/api/job/{job}").status_code == 200, 20, "alpha's run")
        second = _exec(tmp_path / "b", job, 1.5, "b1")  # ... while cluster beta starts its own job J
        assert second.wait(60) == 0 and first.wait(60) == 0

        def both_ended() -> bool:
            rows = collector.get("/api/jobs", params={"IsRunning": "false"}).json()["Jobs"]
            return len([r for r in rows if r["Id"] == job]) == 2

        wait_for(both_ended, 30, "both runs to end")
        page = collector.get(f"/api/job/{job}?raw=true").json()  # the newest run: beta's
        assert page["Metadata"]["ClusterId"] == "beta"
        assert page["Metadata"]["NodeList"] == "b1"  # the node exec named, as its agent is named
        sampled = {node for m in page["MetricData"] for node in m["Data"]}
        assert sampled == {"b1"}, sampled  # alpha's a1 kept sampling its own job J meanwhile
        csv = collector.get(f"/api/job/{job}?format=csv").text
        assert ",b1," in csv and ",a1," not in csv
    finally:
        stop(a)
        stop(b)


def test_steps_are_served_with_their_own_series_and_summary(tmp_path: Path, collector: Collector) -> None:
    """An agent reading a cgroup v1 tree captured on a real Slurm node (job 88 with its batch step)."""
    tree = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "v1_uid"
    agent = start_agent(tmp_path / "n1", collector.grpc_target, "--node", "n1", "--cgroup-root", str(tree))
    try:
        run_hook(
            "prolog",
            tmp_path / "n1",
            {"SLURM_JOB_ID": "88", "SLURM_JOB_USER": "alice", "SLURM_JOB_UID": "1000"},
        )

        def steps() -> list | None:
            response = collector.get("/api/job/88")
            found = response.json()["Steps"] if response.status_code == 200 else []
            return found if any(s["Step"] == "batch" and s["Samples"] >= 2 for s in found) else None

        batch = next(s for s in wait_for(steps, 30, "the batch step") if s["Step"] == "batch")
        assert batch["Nodes"] == ["n1"] and batch["CpuSeconds"] > 0 and batch["MemPeakBytes"] > 0
        page = collector.get("/api/job/88", params={"step": "batch", "raw": "true"}).json()
        assert page["Step"] == "batch" and {n for m in page["MetricData"] for n in m["Data"]} == {"n1"}
        bad = collector.get("/api/job/88", params={"step": "../x"})
        assert bad.status_code == 400 and "step" in bad.text
    finally:
        stop(agent)
