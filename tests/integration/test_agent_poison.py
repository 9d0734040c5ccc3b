"""Poison inputs on the agent side (issue 14): nothing a prolog, a socket client or a spooled file sends
can crash the agent or stop a node's data, and a batch the collector refuses is set aside, not resent.

Everything runs through the real paths: the `jobpulse-agent prolog` command with an environment, the
agent's unix socket, real gRPC on 127.0.0.1 to a real collector. The agent samples the static cgroup
fixture (job 88: job rows every tick), so "data keeps arriving" is checked on real batches.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from delivery import agent, db, gaps, produced, stored
from jobpulse.agent.spool import Spool
from jobpulse.proto.v1 import ingest_pb2 as pb
from support import Collector, run_hook, start_collector, stop, wait_for

NODE = "poison1"


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = start_collector(tmp_path / "collector")
    yield c
    stop(c.proc)


def slurm_env(job_id: str, **extra: str) -> dict[str, str]:
    """The shape slurmd 22.05 gives its Prolog (see tests/fixtures/slurm/prolog-env.log)."""
    return {
        "SLURM_CLUSTER_NAME": "testcluster",
        "SLURM_JOB_ID": job_id,
        "SLURM_JOB_ACCOUNT": "physics",
        "SLURM_JOB_CPUS_PER_NODE": "2",
        "SLURM_JOB_GID": "1000",
        "SLURM_JOB_UID": "1000",
        "SLURM_JOB_USER": "alice",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_JOB_PARTITION": "compute",
        "SLURM_NODELIST": "vm",
        **extra,
    }


def hook_log(state: Path) -> str:
    """What the hooks logged (to <state>/hooks.log where there is no /dev/log); '' with syslog."""
    path = state / "hooks.log"
    return path.read_text() if path.exists() else ""


def job_row(collector: Collector, job_id: int) -> dict[str, Any] | None:
    with db(collector) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return dict(row) if row else None


def samples_after(collector: Collector, job_id: int, after_ms: int) -> int:
    return sum(1 for j, _, ts in stored(collector, NODE)[1] if j == job_id and ts > after_ms)


def delivered(collector: Collector, state: Path) -> bool:
    """The collector holds everything the agent made so far."""
    seqs = produced(state / "spool").seqs
    return bool(seqs) and stored(collector, NODE)[2] >= seqs[-1]


def test_d2_poison_job_id_prolog_then_a_normal_job_is_delivered(tmp_path: Path, collector: Collector) -> None:
    """D2: `SLURM_JOB_ID=²` and a 20-digit id passed str.isdigit(); the collector refused the batch and
    the agent resent it twice a second, storing nothing more for the node, even after a restart."""
    state = tmp_path / "agent"
    proc = agent(state, collector.grpc_target, NODE, tick=0.2)
    try:
        wait_for(lambda: delivered(collector, state), 20, "the first batches")
        for poison in ("²", "12345678901234567890", "٣", " 88", "1_2"):
            run_hook("prolog", state, slurm_env(poison))
        poisoned_at = int(time.time() * 1000)
        run_hook("prolog", state, slurm_env("88"))
        wait_for(lambda: job_row(collector, 88), 20, "the normal job's start at the collector")
        wait_for(lambda: samples_after(collector, 88, poisoned_at) >= 3, 20, "the normal job's samples")
        run_hook("epilog", state, slurm_env("88", SLURM_JOB_EXIT_CODE2="0:0"))
        wait_for(lambda: (job_row(collector, 88) or {}).get("is_running") == 0, 20, "the job's end")
        assert proc.poll() is None
        assert not list((state / "events").glob("*.json")), "a poison event was spooled"
        if not os.path.exists("/dev/log"):  # without syslog the hooks log to <state_dir>/hooks.log
            logged = hook_log(state)
            assert logged.count("not a Slurm job environment") == 5, logged
            assert "SLURM_JOB_ID: '²' is not a Slurm job number" in logged
    finally:
        stop(proc)
    # ...and after a restart too: nothing poisonous waits in the spool.
    proc = agent(state, collector.grpc_target, NODE, tick=0.2)
    try:
        restarted_at = int(time.time() * 1000)
        wait_for(lambda: samples_after(collector, 88, restarted_at) >= 2, 20, "samples after the restart")
        assert not (state / "spool" / "rejected").exists()
    finally:
        stop(proc)


def test_d3_poison_numbers_do_not_crash_the_agent(tmp_path: Path, collector: Collector) -> None:
    """D3: a uid of 2**70, SLURM_JOB_NUM_NODES=-1 or SLURM_JOB_CPUS_PER_NODE=99999999999 made the
    agent's socket handler raise; the hook spooled the event, and the agent then died (rc 1) replaying
    it at every start. Now the bad fields are left out (logged) and the job is recorded without them;
    a poisonous file in the events directory is set aside in events/rejected/ with its reason."""
    state = tmp_path / "agent"
    proc = agent(state, collector.grpc_target, NODE, tick=0.2)
    try:
        run_hook(
            "prolog",
            state,
            slurm_env(
                "88",
                SLURM_JOB_UID=str(2**70),
                SLURM_JOB_NUM_NODES="-1",
                SLURM_JOB_CPUS_PER_NODE="99999999999",
                SLURM_JOB_USER="alice\nroot",
            ),
        )
        row = wait_for(lambda: job_row(collector, 88), 20, "the job's start at the collector")
        assert (row["user_id"], row["num_nodes"], row["cpus"], row["account"]) == (
            None,
            None,
            None,
            "physics",
        )
        assert row["group_id"] == 1000 and row["user_name"] in ("", None)
        if not os.path.exists("/dev/log"):
            logged = hook_log(state)
            for name in ("SLURM_JOB_UID", "SLURM_JOB_NUM_NODES", "SLURM_JOB_CPUS_PER_NODE", "SLURM_JOB_USER"):
                assert f"ignoring {name}" in logged, logged
        assert proc.poll() is None
    finally:
        stop(proc)
    # What an older hook spooled while the agent was down: replayed at start, it must not kill the agent.
    spooled = state / "events"
    poison_meta = {
        "job_id": "88",
        "uid": 2**70,
        "num_nodes": -1,
        "cpus_on_node": 99999999999,
        "state": "RUNNING",
    }
    files = {
        "00000000000000000001-a.json": json.dumps({"type": "start", "meta": poison_meta}),
        "00000000000000000002-b.json": json.dumps({"type": "start", "meta": {"job_id": "²"}}),
        "00000000000000000003-c.json": "{not json",
        "00000000000000000004-d.json": "[" * 100_000 + "]" * 100_000,
        "00000000000000000005-e.json": json.dumps({"type": "stop", "meta": "88"}),
        "00000000000000000006-f.json": json.dumps(
            {"type": "start", "meta": {"job_id": 88}, "pid": 2**70, "rusage": {"utime": 10**400}}
        ),
    }
    spooled.mkdir(mode=0o700, exist_ok=True)
    for name, text in files.items():
        (spooled / name).write_text(text, encoding="utf-8")
    proc = agent(state, collector.grpc_target, NODE, tick=0.2)
    try:
        wait_for(lambda: not list(spooled.glob("*.json")), 20, "the spooled events to be handled")
        started = int(time.time() * 1000)
        wait_for(lambda: samples_after(collector, 88, started) >= 3, 20, "samples after the replay")
        assert proc.poll() is None, (state / "agent.log").read_text()[-3000:]
        rejected = sorted(p.name for p in (spooled / "rejected").iterdir())
        assert rejected == sorted([f"{n}{suffix}" for n in list(files)[1:5] for suffix in ("", ".reason")]), (
            rejected
        )
        reason = (spooled / "rejected" / "00000000000000000002-b.json.reason").read_text()
        assert "job_id" in reason and "²" in reason
        assert "nested" in (spooled / "rejected" / "00000000000000000004-d.json.reason").read_text()
        assert (spooled / "rejected").stat().st_mode & 0o777 == 0o700
    finally:
        stop(proc)
    assert "Traceback" not in (state / "agent.log").read_text()


def _raw(sock_path: Path, data: bytes) -> dict[str, Any]:
    """Send raw bytes on the agent socket; the one reply line, parsed (an error when there is none)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(sock_path))
        sock.sendall(data)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    answer = json.loads(reply)
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), reply
    return answer


def test_d15_oversized_and_malformed_socket_requests_are_answered(
    tmp_path: Path, collector: Collector
) -> None:
    """D15: an event over 64 KiB on the agent socket raised an unhandled error (no answer; the hook then
    spooled it). Every request now gets an answer line, and the agent logs why it refused it."""
    state = tmp_path / "agent"
    proc = agent(state, collector.grpc_target, NODE, tick=0.2)
    sock = state / "agent.sock"
    try:
        huge = {"type": "start", "meta": {"job_id": "88", "job_name": "x" * 100_000}}
        answer = _raw(sock, json.dumps(huge).encode() + b"\n")
        assert answer["ok"] is False and "longer than" in answer["error"]
        for junk in (
            b"[" * 50_000 + b"\n",
            b"\xff\xfe\n",
            b"[1, 2]\n",
            b'{"type": "start"}\n',
            b"1" * 5000 + b"\n",
        ):
            assert _raw(sock, junk)["ok"] is False, junk[:20]
        answer = _raw(sock, b'{"type": "start", "meta": {"job_id": "88", "uid": 1e400, "gpus": "0,../x"}}\n')
        assert answer["ok"] is True and len(answer["ignored"]) == 2
        wait_for(lambda: job_row(collector, 88), 20, "the job's start")
        assert proc.poll() is None
        log = (state / "agent.log").read_text()
        assert "refused a request longer than 65536 bytes" in log
        assert "Traceback" not in log and "Unhandled exception" not in log
    finally:
        stop(proc)


def test_collector_reject_is_set_aside_and_later_batches_are_stored(
    tmp_path: Path, collector: Collector
) -> None:
    """A batch the collector refuses (here one an older agent wrote into its spool, job id '²') is
    answered with a Reject: the agent keeps it in spool/rejected/ with the reason, reports it as a gap,
    and its later batches are stored (the collector used to end the stream, and the agent resent it)."""
    state = tmp_path / "agent"
    spool = Spool(state / "spool", keep_acked=True)
    poison = pb.Batch()
    poison.events.add(kind=pb.JobEvent.START, time_ms=1).meta.job_id = "²"
    assert spool.append(poison) == 1
    spool.close()
    proc = agent(state, collector.grpc_target, NODE, tick=0.2)
    try:
        kept = state / "spool" / "rejected" / f"seq-{1:020d}.json"
        wait_for(kept.exists, 20, "the refused batch to be set aside")
        record = json.loads(kept.read_text())
        assert record["seq"] == 1 and "job_id '²'" in record["reason"]
        assert record["batch"]["events"][0]["meta"]["job_id"] == "²"
        assert kept.stat().st_mode & 0o777 == 0o600
        wait_for(lambda: stored(collector, NODE)[2] >= 5, 20, "later batches to be stored")
        wait_for(lambda: gaps(collector, NODE) == 1, 20, "the refused batch reported as a gap")
        assert job_row(collector, 2) is None  # '²' was not read as anything
        assert proc.poll() is None
        assert (state / "agent.log").read_text().count("refused batch 1") == 1
    finally:
        stop(proc)
    # Restarted, the agent does not send it again (the collector's resume point is past it).
    proc = agent(state, collector.grpc_target, NODE, tick=0.2)
    try:
        before = stored(collector, NODE)[2]
        wait_for(lambda: stored(collector, NODE)[2] > before + 2, 20, "batches after the restart")
        assert (state / "agent.log").read_text().count("refused batch") == 1
        assert gaps(collector, NODE) == 1
    finally:
        stop(proc)
