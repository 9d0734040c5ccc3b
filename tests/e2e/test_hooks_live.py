"""The real `jobpulse-agent prolog|epilog` commands against a real agent and collector (no Slurm needed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Collector, run_hook, start_agent, start_collector, stop, unique_job_id, wait_for

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = start_collector(tmp_path / "collector")
    yield c
    stop(c.proc)


def slurm_env(job_id: int, **extra: str) -> dict[str, str]:
    """The shape slurmd 22.05 gives its Prolog/Epilog (see tests/fixtures/slurm/prolog-env.log)."""
    return {
        "SLURMD_NODENAME": "vm",
        "SLURM_CLUSTER_NAME": "testcluster",
        "SLURM_JOBID": str(job_id),
        "SLURM_JOB_ID": str(job_id),
        "SLURM_JOB_ACCOUNT": "physics",
        "SLURM_JOB_CPUS_PER_NODE": "2",
        "SLURM_JOB_GID": "1000",
        "SLURM_JOB_UID": "1000",
        "SLURM_JOB_USER": "alice",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_JOB_PARTITION": "compute",
        "SLURM_NODELIST": "vm",
        "SLURM_SCRIPT_CONTEXT": "prolog_slurmd",
        **extra,
    }


def job(collector: Collector, job_id: int) -> dict[str, Any] | None:
    response = collector.get(f"/api/job/{job_id}")
    return response.json()["Metadata"] if response.status_code == 200 else None


def test_prolog_and_epilog_record_the_job(tmp_path: Path, collector: Collector) -> None:
    state = tmp_path / "agent"
    agent = start_agent(state, collector.grpc_target)
    try:
        job_id = unique_job_id()
        before = int(time.time())
        assert run_hook("prolog", state, slurm_env(job_id)) < 2.0
        running = wait_for(lambda: job(collector, job_id), what="job start at the collector")
        assert running["IsRunning"] is True
        run_hook("epilog", state, slurm_env(job_id, SLURM_JOB_EXIT_CODE="768", SLURM_JOB_EXIT_CODE2="3:0"))
        ended = wait_for(lambda: (j := job(collector, job_id)) and not j["IsRunning"] and j, what="job stop")
    finally:
        stop(agent)
    assert (ended["UserName"], ended["UserId"], ended["Account"], ended["Partition"], ended["ClusterId"]) == (
        "alice",
        1000,
        "physics",
        "compute",
        "testcluster",
    )
    assert (ended["Cpus"], ended["NumNodes"], ended["NodeList"], ended["ExitCode"], ended["State"]) == (
        2,
        1,
        "vm",
        3,
        "FAILED",
    )
    assert before <= ended["StartTime"] <= ended["StopTime"] <= int(time.time())


def test_agent_stopped_events_arrive_when_it_is_back(tmp_path: Path, collector: Collector) -> None:
    state = tmp_path / "agent"
    job_id = unique_job_id()
    assert run_hook("prolog", state, slurm_env(job_id)) < 2.0
    assert run_hook("epilog", state, slurm_env(job_id, SLURM_JOB_EXIT_CODE2="0:0")) < 2.0
    assert len(list((state / "events").glob("*.json"))) == 2
    assert job(collector, job_id) is None
    agent = start_agent(state, collector.grpc_target)
    try:
        ended = wait_for(
            lambda: (j := job(collector, job_id)) and not j["IsRunning"] and j, what="spooled events"
        )
    finally:
        stop(agent)
    assert (ended["UserName"], ended["ExitCode"], ended["State"]) == ("alice", 0, "COMPLETED")
    assert ended["StartTime"] <= ended["StopTime"]
    assert list((state / "events").glob("*.json")) == []


def test_hung_agent_socket_then_agent_back(tmp_path: Path, collector: Collector) -> None:
    state = tmp_path / "agent"
    state.mkdir()
    job_id = unique_job_id()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
        hung.bind(str(state / "agent.sock"))
        hung.listen(8)  # connects succeed, nobody ever answers
        assert run_hook("prolog", state, slurm_env(job_id)) < 2.0
        assert run_hook("epilog", state, slurm_env(job_id, SLURM_JOB_EXIT_CODE2="0:0")) < 2.0
    agent = start_agent(state, collector.grpc_target)
    try:
        ended = wait_for(
            lambda: (j := job(collector, job_id)) and not j["IsRunning"] and j, what="spooled events"
        )
    finally:
        stop(agent)
    assert ended["UserName"] == "alice" and ended["ExitCode"] == 0


def _as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    def become() -> None:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    return subprocess.run(
        [SYSTEM_PYTHON, "-c", code],
        preexec_fn=become,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


CONNECT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1] if len(sys.argv) > 1 else {path!r})
except PermissionError:
    print("EACCES"); sys.exit(0)
s.settimeout(2)
try:
    s.sendall(json.dumps({{"type": "start", "meta": {{"job_id": "{job_id}", "user": "mallory"}}}}).encode() + b"\\n")
except BrokenPipeError:
    pass  # the agent answered and hung up before we wrote: read its answer
print(s.recv(4096).decode().strip())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a probe as an unprivileged user")
@pytest.mark.skipif(
    not os.path.exists(SYSTEM_PYTHON), reason="no /usr/bin/python3 for the unprivileged probe"
)
def test_non_root_cannot_hand_the_agent_events(collector: Collector) -> None:
    # A directory others may enter, as /run is: the socket's own mode and SO_PEERCRED must hold.
    state = Path("/tmp") / f"jobpulse-e2e-{os.getpid()}"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    agent = start_agent(state, collector.grpc_target)
    try:
        sock = state / "agent.sock"
        assert sock.stat().st_mode & 0o777 == 0o600
        job_id = unique_job_id()
        refused = _as_nobody(CONNECT.format(path=str(sock), job_id=job_id))
        assert refused.stdout.strip() == "EACCES", refused.stderr
        os.chmod(sock, 0o666)  # even a misconfigured socket mode is caught by the peer credential check
        forged = _as_nobody(CONNECT.format(path=str(sock), job_id=job_id))
        assert "permission denied" in forged.stdout, forged.stdout + forged.stderr
        time.sleep(1.5)
        assert job(collector, job_id) is None
        events_dir = state / "events"
        events_dir.mkdir(mode=0o700, exist_ok=True)
        write = _as_nobody(f"open({str(events_dir / 'x.json')!r}, 'w').write('{{}}')")
        assert write.returncode != 0 and "PermissionError" in write.stderr
    finally:
        stop(agent)
        shutil.rmtree(state, ignore_errors=True)


def runs(collector: Collector, job_id: int) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(f"file:{collector.state / 'jobpulse.db'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM jobs WHERE job_id = ? ORDER BY run_id", (job_id,))]


def test_duplicates_out_of_order_and_requeue_through_the_hooks(tmp_path: Path, collector: Collector) -> None:
    state = tmp_path / "agent"
    agent = start_agent(state, collector.grpc_target)
    try:
        dup = unique_job_id()
        run_hook("prolog", state, slurm_env(dup))
        run_hook("prolog", state, slurm_env(dup, SLURM_JOB_ACCOUNT="other"))  # slurmd retried the prolog
        run_hook("epilog", state, slurm_env(dup, SLURM_JOB_EXIT_CODE2="0:0"))
        run_hook("epilog", state, slurm_env(dup, SLURM_JOB_EXIT_CODE2="9:0"))
        early = unique_job_id()
        run_hook("epilog", state, slurm_env(early, SLURM_JOB_EXIT_CODE2="2:0"))  # the stop arrives first
        requeued = unique_job_id()
        run_hook("prolog", state, slurm_env(requeued))
        run_hook("epilog", state, slurm_env(requeued, SLURM_JOB_EXIT_CODE2="0:15"))
        time.sleep(1.1)  # Slurm restarts a requeued job in a later second
        run_hook("prolog", state, slurm_env(requeued, SLURM_JOB_RESTART_COUNT="1"))
        wait_for(lambda: len(runs(collector, requeued)) == 2, what="the requeued run")
        wait_for(
            lambda: runs(collector, dup) and not runs(collector, dup)[0]["is_running"], what="dup job stop"
        )
        wait_for(lambda: runs(collector, early), what="early stop")
    finally:
        stop(agent)
    [one] = runs(collector, dup)
    assert (one["account"], one["exit_code"], one["state"], one["is_running"]) == (
        "physics",
        0,
        "COMPLETED",
        0,
    )
    [stopped_first] = runs(collector, early)
    assert (stopped_first["is_running"], stopped_first["exit_code"], stopped_first["user_name"]) == (
        0,
        2,
        "alice",
    )
    assert stopped_first["start_time"] <= stopped_first["stop_time"]
    first, second = runs(collector, requeued)
    assert (first["is_running"], first["state"], first["exit_code"]) == (0, "CANCELLED", 143)
    assert (second["is_running"], second["stop_time"]) == (1, None)
    assert second["start_time"] > first["stop_time"]
