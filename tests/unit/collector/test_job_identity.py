"""Job identity in the store and the API: array tasks, het components, hostlists, identity, run bounds."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.slurm import parse
from jobpulse.collector.store import jobs
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common.validate import InvalidField
from litestar.testing import AsyncTestClient
from seed import add_samples
from storehelp import db_of

SLURM = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"
T0 = 1_795_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123", JobId(123)),
        ("8_1", JobId(8, array_task=1)),
        ("5+1", JobId(5, het_offset=1)),
        ("1_2", JobId(1, 2)),
    ],
)
def test_job_id_forms(text: str, expected: JobId) -> None:
    assert JobId.parse(text) == expected and str(expected) == text


@pytest.mark.parametrize(
    "text", ["12a", "1_2_3", "1__2", "_1", "+1", "1+", "²", "٣", "0", "4294967296", " 7", "8_1+1"]
)
def test_job_id_refuses_everything_else(text: str) -> None:
    with pytest.raises(InvalidField, match=r"^id: "):
        JobId.parse(text)


def _squeue_doc(**changes: object) -> dict:
    """A real 22.05 `squeue --json` capture with one job's fields changed."""
    doc = json.loads((SLURM / "squeue-json-running.json").read_text())
    job = copy.deepcopy(doc["jobs"][0])
    job.update(changes)
    doc["jobs"] = [job]
    return doc


async def _apply(store: SqliteStore, *docs: dict) -> None:
    found = [j for doc in docs for j in parse.jobs(doc, "squeue")]
    await store.apply_slurm_jobs(found, "reconciler")


async def test_reconciler_hostlist_becomes_nodes(fx_client: AsyncTestClient, fx_store: SqliteStore) -> None:
    await _apply(fx_store, _squeue_doc(job_id=41, nodes="node[001-004]", node_count=4, start_time=T0))
    token = await login(fx_client, "admin", ADMIN_PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    meta = (await fx_client.get("/api/job/41", headers=auth)).json()["Metadata"]
    assert [n["Name"] for n in meta["Nodes"]] == ["node001", "node002", "node003", "node004"]
    assert meta["NodeList"] == "node001|node002|node003|node004"  # JobMon's page splits it on "|"
    assert meta["HostList"] == "node[001-004]"
    listed = (await fx_client.get("/api/jobs", params={"Node": "node003"}, headers=auth)).json()["Jobs"]
    assert [j["Id"] for j in listed] == [41]


async def test_array_tasks_and_het_components(fx_client: AsyncTestClient, fx_store: SqliteStore) -> None:
    # --array=1-2 submitted as job 8: task 1 is job 9, task 2 reuses 8 (as Slurm numbers them).
    # Job 12 exists too, so that reading 1_2 as int("1_2") == 12 would be caught.
    await _apply(
        fx_store,
        _squeue_doc(job_id=9, array_job_id=8, array_task_id=1, start_time=T0),
        _squeue_doc(job_id=8, array_job_id=8, array_task_id=2, start_time=T0 + 1),
        _squeue_doc(job_id=12, start_time=T0 + 2, name="twelve"),
        _squeue_doc(job_id=3, array_job_id=1, array_task_id=2, start_time=T0 + 3, name="array one"),
        _squeue_doc(job_id=6, het_job_id=5, het_job_offset=1, start_time=T0 + 4, name="het part"),
        _squeue_doc(job_id=5, het_job_id=5, het_job_offset=0, start_time=T0 + 4, name="het leader"),
    )
    auth = {"Authorization": f"Bearer {await login(fx_client, 'admin', ADMIN_PASSWORD)}"}

    async def meta(ref: str) -> dict:
        response = await fx_client.get(f"/api/job/{ref}", headers=auth)
        assert response.status_code == 200, (ref, response.text)
        return response.json()["Metadata"]

    first, second = await meta("8_1"), await meta("8_2")
    assert (first["Id"], first["ArrayJobId"], first["ArrayTaskId"]) == (9, 8, 1)
    assert (second["Id"], second["ArrayJobId"], second["ArrayTaskId"]) == (8, 8, 2)
    assert (await meta("1_2"))["JobName"] == "array one"  # task 2 of array 1, never job 12
    assert (await meta("5+1"))["Id"] == 6
    assert (await fx_client.get("/api/job/8_3", headers=auth)).status_code == 404
    bad = await fx_client.get("/api/job/12a", headers=auth)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("id:")
    listed = (await fx_client.get("/api/jobs", params={"ArrayJobId": 8}, headers=auth)).json()["Jobs"]
    assert sorted((j["Id"], j["ArrayTaskId"]) for j in listed) == [(8, 2), (9, 1)]
    assert (await fx_client.get("/api/search/all/8_1", headers=auth)).text == "job:9"
    het = (await fx_client.get("/api/jobs", params={"HetJobId": 5}, headers=auth)).json()["Jobs"]
    assert sorted((j["Id"], j["JobIdString"]) for j in het) == [(5, "5+0"), (6, "5+1")]


async def test_het_components_from_the_prolog_then_the_reconciler(
    fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    """The prolog says which het job a component belongs to, and the offset only for component 0 (its
    job id is the het job's); squeue fills in the other component's offset."""
    from jobpulse.proto.v1 import ingest_pb2 as pb

    def prolog(job: str, **het: int) -> pb.JobEvent:
        meta = pb.JobMeta(job_id=job, user="root", start_time=T0, state="RUNNING", source="prolog", **het)
        return pb.JobEvent(kind=pb.JobEvent.START, time_ms=T0 * 1000, meta=meta)

    db = db_of(fx_store)
    jobs.apply_event(db, "hh1", "testcluster", prolog("41", het_job_id=41, het_job_offset=0))
    jobs.apply_event(db, "hh2", "testcluster", prolog("42", het_job_id=41))
    jobs.apply_event(db, "hh1", "testcluster", prolog("51"))  # an agent that sends no het fields
    db.commit()
    auth = {"Authorization": f"Bearer {await login(fx_client, 'admin', ADMIN_PASSWORD)}"}

    async def listed(het: int) -> list[tuple[int, str, int | None]]:
        rows = (await fx_client.get("/api/jobs", params={"HetJobId": het}, headers=auth)).json()["Jobs"]
        return sorted((j["Id"], j["JobIdString"], j["HetJobOffset"]) for j in rows)

    assert await listed(41) == [(41, "41+0", 0), (42, "42", None)]  # 42's offset: not known yet
    await _apply(
        fx_store,
        _squeue_doc(job_id=42, het_job_id=41, het_job_offset=1, start_time=T0),
        _squeue_doc(job_id=51, het_job_id=51, het_job_offset=0, start_time=T0),
    )
    assert await listed(41) == [(41, "41+0", 0), (42, "41+1", 1)]
    assert await listed(51) == [(51, "51+0", 0)]  # offset 0 is a value, filled in like any other


def test_authoritative_start_replaces_identity_as_a_whole(fx_store: SqliteStore) -> None:
    db = db_of(fx_store)
    run = jobs.record_start(db, "c", 77, T0, {"user_name": "root", "user_id": 0}, "prolog")
    jobs.record_start(
        db,
        "c",
        77,
        T0,
        {"user_name": "alice", "user_id": 1000, "group_name": "alice", "group_id": 1000},
        "api",
    )
    row = db.execute(
        "SELECT user_name, user_id, group_name, group_id FROM jobs WHERE run_id = ?", (run,)
    ).fetchone()
    assert tuple(row) == ("alice", 1000, "alice", 1000)
    # an agent event afterwards only fills blanks: it never overwrites the identity
    jobs.record_start(db, "c", 77, T0, {"user_name": "root", "user_id": 0}, "prolog")
    row = db.execute("SELECT user_name, user_id FROM jobs WHERE run_id = ?", (run,)).fetchone()
    assert tuple(row) == ("alice", 1000)


def test_runs_far_apart_are_bounded_both_ways(fx_store: SqliteStore) -> None:
    db = db_of(fx_store)
    first = jobs.record_start(db, "", 55, T0, {}, "prolog")
    jobs.record_stop(db, "", 55, T0 + 100, "COMPLETED", 0, "epilog")
    add_samples(db, 55, ("n1",), T0, 10)
    later = T0 + 30 * 86400  # the id comes round again a month later (a re-installed cluster)
    second = jobs.record_start(db, "", 55, later, {}, "prolog")
    add_samples(db, 55, ("n2",), later, 10)
    rows = {r["run_id"]: jobs.run_of(r) for r in db.execute("SELECT * FROM jobs WHERE job_id = 55")}
    one, two = jobs.run_scope(db, rows[first]), jobs.run_scope(db, rows[second])
    assert one.end_ms is not None and one.end_ms <= (T0 + 100 + 10) * 1000 < two.start_ms
    count = "SELECT count(*) FROM job_samples WHERE job_id = 55 AND ts >= ? AND ts < ?"
    assert db.execute(count, (one.start_ms, one.end_ms)).fetchone()[0] > 0
    assert (
        db.execute(count, (one.start_ms, one.end_ms)).fetchone()[0]
        < db.execute("SELECT count(*) FROM job_samples WHERE job_id = 55").fetchone()[0]
    )


def test_scontrol_array_and_het_fields() -> None:
    text = (SLURM / "multinode-scontrol-show-job.txt").read_text().split("\n\n")[0]
    job = parse.from_scontrol(text)
    assert job is not None and job.nodelist == "n[1-3]" and job.array_job_id is None
    crafted = parse.from_scontrol("JobId=3 ArrayJobId=2 ArrayTaskId=3 JobState=RUNNING")
    assert crafted is not None and (crafted.array_job_id, crafted.array_task_id) == (2, 3)
    het = parse.from_scontrol("JobId=6 HetJobId=5 HetJobOffset=1 JobState=RUNNING")
    assert het is not None and (het.het_job_id, het.het_job_offset) == (5, 1)
