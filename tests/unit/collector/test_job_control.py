"""PUT /api/job_start and PATCH /api/job_stop/{id}: JobMon's bodies, idempotency, requeue, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.services.events import EventBus, JobEnded, JobStarted
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from storehelp import db_of
from support import FIXTURES

START = {
    "Id": 4242,
    "UserId": 1001,
    "UserName": "alice",
    "GroupId": 1001,
    "GroupName": "alice",
    "ClusterId": "testcluster",
    "NumNodes": 1,
    "NumTasks": 2,
    "TasksPerNode": 2,
    "GPUsPerNode": 0,
    "StartTime": 1_795_400_000,
    "StopTime": 0,
    "IsRunning": True,
    "JobName": "sim",
    "Account": "proj1",
    "TTL": 0,
    "Partition": "compute",
    "JobScript": "#!/bin/bash\nsrun sim\n",
    "Nodes": [{"Id": 1, "Name": "vm"}],
    "Tags": [],
}


@pytest.fixture
def fx_key(fx_store: SqliteStore) -> dict[str, str]:
    key, _ = users.create_api_key(db_of(fx_store), "service:slurm", "job-control", "prolog")
    return {"X-Api-Key": key}


def runs(store: SqliteStore, job_id: int) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in db_of(store).execute("SELECT * FROM jobs WHERE job_id = ? ORDER BY run_id", (job_id,))
    ]


async def test_start_then_stop_records_the_run(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_key: dict[str, str]
) -> None:
    response = await fx_client.put("/api/job_start", json=START, headers=fx_key)
    assert response.status_code == 200, response.text
    assert response.json() == {"Id": 4242}  # job-control reads nothing back (D4)
    # JobMon's script sends SLURM_JOB_EXIT_CODE, a wait status: 768 is "exit 3"
    response = await fx_client.patch(
        "/api/job_stop/4242", json={"ExitCode": 768, "StopTime": 1_795_400_100}, headers=fx_key
    )
    assert response.status_code == 200, response.text
    [run] = runs(fx_store, 4242)
    assert (run["user_name"], run["user_id"], run["account"], run["partition"], run["job_name"]) == (
        "alice",
        1001,
        "proj1",
        "compute",
        "sim",
    )
    assert (run["start_time"], run["stop_time"], run["exit_code"], run["state"], run["is_running"]) == (
        1_795_400_000,
        1_795_400_100,
        3,
        "FAILED",
        0,
    )
    assert run["nodelist"] == "vm" and run["num_tasks"] == 2
    assert (run["job_script"], run["tasks_per_node"]) == ("#!/bin/bash\nsrun sim\n", 2)


@pytest.mark.parametrize(
    ("node_list", "nodes"),
    [
        ("node01|node02", ["node01", "node02"]),  # JobMon's Slurm script
        ("node01", ["node01"]),
        ("gpu[1-3]|node07", ["gpu1", "gpu2", "gpu3", "node07"]),
        ("node01,node02", ["node01", "node02"]),
        (" node02 | node01 |", ["node01", "node02"]),
    ],
)
async def test_node_list_by_bar_comma_or_hostlist(
    fx_client: AsyncTestClient,
    fx_store: SqliteStore,
    fx_key: dict[str, str],
    node_list: str,
    nodes: list[str],
) -> None:
    body = {k: v for k, v in START.items() if k not in ("Nodes", "NumNodes")} | {"nodeList": node_list}
    response = await fx_client.put("/api/job_start", json=body, headers=fx_key)
    assert response.status_code == 200, response.text
    [run] = runs(fx_store, 4242)
    assert (json.loads(run["nodes"]), run["num_nodes"]) == (nodes, len(nodes))


async def test_job_script_and_tasks_per_node_are_shown_to_admins(
    fx_client: AsyncTestClient, fx_key: dict[str, str]
) -> None:
    await fx_client.put("/api/job_start", json=START | {"TasksPerNode": 3, "NumNodes": 2}, headers=fx_key)
    admin = {"Authorization": f"Bearer {await login(fx_client, 'admin', ADMIN_PASSWORD)}"}
    fx_client.cookies.clear()
    meta = (await fx_client.get("/api/job/4242", headers=admin)).json()["Metadata"]
    assert (meta["JobScript"], meta["TasksPerNode"], meta["NumTasks"]) == ("#!/bin/bash\nsrun sim\n", 3, 2)


async def until(done: Callable[[], bool]) -> None:
    """Wait (a second at most) for ``done``: the bus hands events to subscribers in later callbacks."""
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0.01)


async def test_rest_start_and_stop_are_published_on_the_event_bus(
    fx_client: AsyncTestClient, fx_key: dict[str, str]
) -> None:
    bus: EventBus = fx_client.app.state.events
    seen: list[Any] = []
    bus.subscribe((JobStarted, JobEnded), seen.append)
    assert (await fx_client.put("/api/job_start", json=START, headers=fx_key)).status_code == 200
    await until(lambda: len(seen) == 1)
    assert seen == [JobStarted(4242, "", 1_795_400_000, "api")]
    stop = {"ExitCode": 3, "StopTime": 1_795_400_100}
    assert (await fx_client.patch("/api/job_stop/4242", json=stop, headers=fx_key)).status_code == 200
    await until(lambda: len(seen) == 2)
    assert seen[1:] == [JobEnded(4242, "", "FAILED", 1_795_400_100, "api")]
    refused = await fx_client.patch("/api/job_stop/x", json=stop, headers=fx_key)
    assert refused.status_code == 400
    await asyncio.sleep(0.05)
    assert len(seen) == 2  # nothing stored, nothing published


async def test_duplicate_start_and_stop_change_nothing(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_key: dict[str, str]
) -> None:
    await fx_client.put("/api/job_start", json=START, headers=fx_key)
    again = await fx_client.put("/api/job_start", json={**START, "JobName": "renamed"}, headers=fx_key)
    assert again.status_code == 200
    [run] = runs(fx_store, 4242)
    assert run["job_name"] == "sim"
    await fx_client.patch(
        "/api/job_stop/4242", json={"ExitCode": 0, "StopTime": 1_795_400_100}, headers=fx_key
    )
    before = runs(fx_store, 4242)
    dup = await fx_client.patch(
        "/api/job_stop/4242", json={"ExitCode": 9, "StopTime": 1_795_400_200}, headers=fx_key
    )
    assert dup.status_code == 200
    after = runs(fx_store, 4242)
    assert [(r["stop_time"], r["exit_code"], r["state"]) for r in after] == [(1_795_400_100, 0, "COMPLETED")]
    assert [r["updated"] for r in after] == [r["updated"] for r in before]


async def test_stop_before_start_creates_then_merges(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_key: dict[str, str]
) -> None:
    response = await fx_client.patch(
        "/api/job_stop/4242", json={"ExitCode": 0, "StopTime": 1_795_400_100}, headers=fx_key
    )
    assert response.status_code == 200
    [run] = runs(fx_store, 4242)
    assert (run["is_running"], run["stop_time"], run["user_name"]) == (0, 1_795_400_100, "")
    # the late start fills in the metadata and the real start of that same run
    await fx_client.put("/api/job_start", json=START, headers=fx_key)
    [run] = runs(fx_store, 4242)
    assert (run["is_running"], run["start_time"], run["stop_time"], run["user_name"]) == (
        0,
        1_795_400_000,
        1_795_400_100,
        "alice",
    )


async def test_requeue_is_a_separate_run(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_key: dict[str, str]
) -> None:
    await fx_client.put("/api/job_start", json=START, headers=fx_key)
    await fx_client.patch(
        "/api/job_stop/4242", json={"ExitCode": 0, "StopTime": 1_795_400_100}, headers=fx_key
    )
    await fx_client.put("/api/job_start", json={**START, "StartTime": 1_795_400_500}, headers=fx_key)
    first, second = runs(fx_store, 4242)
    assert (first["start_time"], first["stop_time"], first["is_running"]) == (1_795_400_000, 1_795_400_100, 0)
    assert (second["start_time"], second["stop_time"], second["is_running"]) == (1_795_400_500, None, 1)
    await fx_client.patch(
        "/api/job_stop/4242", json={"ExitCode": 256, "StopTime": 1_795_400_600}, headers=fx_key
    )
    first, second = runs(fx_store, 4242)
    assert first["exit_code"] == 0 and (second["stop_time"], second["exit_code"]) == (1_795_400_600, 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in START.items() if k != "Id"}, "Id"),
        ({**START, "Id": "abc"}, "Id"),
        ({**START, "StartTime": "yesterday"}, "StartTime"),
        ({**START, "Nodes": [{"Name": 5}]}, "Name"),
        ({**START, "Id": -4}, "Id"),
        ({**START, "NodeList": "node01|bad/name"}, "NodeList"),
        ({**START, "JobScript": 5}, "JobScript"),
        ({**START, "tasksPerNode": -1}, "TasksPerNode"),
    ],
)
async def test_bad_start_bodies_are_rejected_naming_the_field(
    fx_client: AsyncTestClient,
    fx_store: SqliteStore,
    fx_key: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await fx_client.put("/api/job_start", json=body, headers=fx_key)
    assert response.status_code == 400, response.text
    assert field in response.text
    assert db_of(fx_store).execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


async def test_bad_stop_input(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_key: dict[str, str]
) -> None:
    bad_id = await fx_client.patch("/api/job_stop/12x", json={"ExitCode": 0}, headers=fx_key)
    assert bad_id.status_code == 400 and "id" in bad_id.json()["detail"]
    bad_type = await fx_client.patch("/api/job_stop/5", json={"ExitCode": "zero"}, headers=fx_key)
    assert bad_type.status_code == 400 and "ExitCode" in bad_type.text
    too_big = await fx_client.patch("/api/job_stop/5", json={"ExitCode": 2**40}, headers=fx_key)
    assert too_big.status_code == 400 and "ExitCode" in too_big.json()["detail"]
    assert db_of(fx_store).execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


async def test_huge_body_is_refused(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_key: dict[str, str]
) -> None:
    response = await fx_client.put(
        "/api/job_start", json={**START, "JobScript": "x" * 2_000_000}, headers=fx_key
    )
    assert response.status_code == 413
    assert db_of(fx_store).execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


async def test_only_job_control_or_admin_may_start_and_stop(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    anonymous = await fx_client.put("/api/job_start", json=START)
    assert anonymous.status_code == 401
    token = await login(fx_client, "alice", "alice-password")
    user = await fx_client.put("/api/job_start", json=START, headers={"Authorization": f"Bearer {token}"})
    assert user.status_code == 403 and "job-control" in user.json()["detail"]
    stop = await fx_client.patch("/api/job_stop/4242", json={}, headers={"Authorization": f"Bearer {token}"})
    assert stop.status_code == 403
    user_key, _ = users.create_api_key(db_of(fx_store), "alice", "user", "mine")
    keyed = await fx_client.put("/api/job_start", json=START, headers={"X-Api-Key": user_key})
    assert keyed.status_code == 403
    assert db_of(fx_store).execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    # a job-control key can start jobs but read nothing
    key, _ = users.create_api_key(db_of(fx_store), "service:slurm", "job-control", "prolog")
    assert (await fx_client.put("/api/job_start", json=START, headers={"X-Api-Key": key})).status_code == 200
    assert (await fx_client.get("/api/jobs", headers={"X-Api-Key": key})).status_code == 403


async def test_refresh_without_slurm_cli_is_503(
    fx_client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    token = await login(fx_client, "admin", "admin-secret-pw")
    response = await fx_client.post(
        "/api/admin/refresh_metadata/1", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 503
    assert "Slurm CLI" in response.json()["detail"]


def _slurmctld_epilogs() -> list[dict[str, str]]:
    """The real EpilogSlurmctld environments of four jobs (Slurm 22.05, the test cluster)."""
    blocks: list[dict[str, str]] = []
    for line in (FIXTURES / "slurm" / "epilog-slurmctld-env.log").read_text().splitlines():
        if line.startswith("=== "):
            blocks.append({})
        elif blocks and "=" in line:
            key, _, value = line.partition("=")
            blocks[-1][key] = value
    return blocks


# What sacct said of those jobs (the fixture's header); a job cancelled this early shows 0:0 to both
# epilogs, so it reads COMPLETED until the reconciler takes sacct's CANCELLED.
STATES = {"6": "FAILED", "7": "COMPLETED", "8": "OUT_OF_MEMORY", "9": "FAILED"}


@pytest.mark.parametrize("env", _slurmctld_epilogs(), ids=lambda env: env["SLURM_JOB_EXIT_CODE2"])
async def test_jobmon_stop_keeps_the_wait_status_as_code_and_signal(
    fx_client: AsyncTestClient, fx_key: dict[str, str], env: dict[str, str]
) -> None:
    """JobMon's EpilogSlurmctld script sends ``{"exitCode": <SLURM_JOB_EXIT_CODE>}``, a wait status
    (768 for exit 3); the job then shows Slurm's own "code:signal" (SLURM_JOB_EXIT_CODE2) and state."""
    await fx_client.put("/api/job_start", json=START, headers=fx_key)
    status = env["SLURM_JOB_EXIT_CODE"]
    body = f'{{\n  "exitCode": {status},\n  "stopTime": 1795400100\n}}'  # as the script sends it
    headers = {**fx_key, "Content-Type": "application/x-www-form-urlencoded"}
    assert (await fx_client.patch("/api/job_stop/4242", content=body, headers=headers)).status_code == 200
    admin = {"Authorization": f"Bearer {await login(fx_client, 'admin', ADMIN_PASSWORD)}"}
    meta = (await fx_client.get("/api/job/4242", headers=admin)).json()["Metadata"]
    code, _, sig = env["SLURM_JOB_EXIT_CODE2"].partition(":")
    number = int(code) if int(sig) in (0, 125) else 128 + int(sig)  # the shell's $?; 125 is no signal
    assert (meta["ExitCodeString"], meta["ExitCode"]) == (env["SLURM_JOB_EXIT_CODE2"], number)
    assert meta["State"] == STATES[env["SLURM_JOB_ID"]]


async def test_api_start_and_hook_stop_meet_in_one_run(
    fx_client: AsyncTestClient, fx_store: SqliteStore, fx_key: dict[str, str]
) -> None:
    """A JobMon-style script starts the job without a cluster; the node's epilog (via the agent) ends it."""
    from jobpulse.collector.store.jobs import apply_event
    from jobpulse.proto.v1 import ingest_pb2 as pb

    body = {k: v for k, v in START.items() if k != "ClusterId"}
    assert (await fx_client.put("/api/job_start", json=body, headers=fx_key)).status_code == 200
    stop = pb.JobEvent(
        kind=pb.JobEvent.STOP,
        time_ms=1_795_400_100_000,
        meta=pb.JobMeta(
            job_id="4242", cluster="testcluster", end_time=1_795_400_100, exit_code=0, state="COMPLETED"
        ),
    )
    apply_event(db_of(fx_store), "vm", "testcluster", stop)
    [run] = runs(fx_store, 4242)
    assert (run["is_running"], run["stop_time"], run["state"], run["user_name"]) == (
        0,
        1_795_400_100,
        "COMPLETED",
        "alice",
    )
