"""``sacct --json`` job allocations as usage records (slurm/accounting_json.py), checked against what
``--parsable2`` gives for the same real jobs: both captured at the same moment on the 3-node test
cluster (Slurm 22.05.8, tests/fixtures/slurm/README.md), and job 1 of the single-node captures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jobpulse.collector.slurm import accounting, accounting_json
from support import FIXTURES

SLURM = FIXTURES / "slurm"
pytestmark = pytest.mark.usefixtures("fx_utc")


def _json(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SLURM / name).read_text())
    return doc


def _by_id(window: accounting.Window) -> dict[str, tuple[str, dict[str, Any]]]:
    return {record["JobID"]: (cluster, record) for cluster, record in window.records}


def test_json_gives_the_records_parsable_gives_for_the_same_real_jobs() -> None:
    from_json = accounting_json.window(_json("sacct-json-backfill-week.json"))
    from_text = accounting.window((SLURM / "sacct-P-backfill-week.txt").read_text())
    jobs = _by_id(from_json)
    assert jobs == _by_id(from_text)
    assert len(jobs) == len(from_json.records) == 13
    assert sorted(from_json.unfinished) == sorted(from_text.unfinished)
    # a pending array (22.05's JSON: tasks as the hex bitmap 0x1A) and a running job: asked again later
    assert sorted(from_json.unfinished) == [
        ("960_[1,3-4]", "2026-12-04T10:20:24"),
        ("962", "2026-12-04T10:20:24"),
    ]
    cluster, three_nodes = jobs["955"]
    assert cluster == "jobpulse-test"
    assert (three_nodes["AllocNodes"], three_nodes["NodeList"], three_nodes["AllocCPUS"]) == (3, "hx[1-3]", 3)
    assert {"956_1", "956_2", "956_3", "957+0", "957+1"} <= set(jobs)  # array tasks, het components
    assert (jobs["957+1"][1]["AllocNodes"], jobs["957+1"][1]["NodeList"]) == (2, "hx[1,3]")
    # GPUs from gres/gpu (JSON: {"type": "gres", "name": "gpu"}), hours from the elapsed seconds
    assert (jobs["950"][1]["AllocGPUS"], jobs["950"][1]["GPUHours"]) == (2, round(2 / 3600, 6))
    assert jobs["951"][1]["AllocGPUS"] == 2  # gpu:tesla:1 on each of 2 nodes
    # cancelled while pending: no start ("None", JSON null), no nodes, its requested CPU and node
    never = jobs["959"][1]
    assert (never["State"], never["Start"], never["NodeList"]) == ("CANCELLED", "None", "None assigned")
    assert (never["AllocCPUS"], never["AllocNodes"], never["CPUHours"]) == (1, 1, 0.0)
    assert jobs["954"][1]["State"] == "FAILED"


def test_job1_of_the_single_node_captures_is_the_same_record_either_way() -> None:
    header, _, rows = (SLURM / "sacct-P-all-job1.txt").read_text().partition("\n")
    from_text = accounting.window(rows, header.split("|"))  # sacct -P -o ALL: every field, steps too
    from_json = accounting_json.window(_json("sacct-json-job1.json"))
    assert from_json == from_text
    assert from_json.records[0][1]["Submit"] == "2026-11-23T03:29:54"  # local time, as sacct prints it


def _wrapped(value: Any) -> Any:
    """A 22.05 document as Slurm 23.02 and later print numbers: {"set", "infinite", "number"}."""
    if isinstance(value, dict):
        return {key: _wrapped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wrapped(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return {"set": True, "infinite": False, "number": value}
    return value


def test_newer_layouts_give_the_same_records() -> None:
    doc = _json("sacct-json-backfill-week.json")
    newer = _wrapped(doc)
    for job in newer["jobs"]:
        job["state"]["current"] = [job["state"]["current"]]  # 23.02+: a list of flags
        if job["het"]["job_offset"] is None:  # 23.02+: unset numbers
            job["het"]["job_offset"] = {"set": False, "infinite": False, "number": 0}
    assert accounting_json.window(newer) == accounting_json.window(doc)
    crafted = accounting_json.window(_json("sacct-json-v0040-crafted.json"))  # state lists, 23.02 exit codes
    assert [(r["JobID"], r["State"]) for _, r in crafted.records] == [("8", "FAILED"), ("9", "CANCELLED")]


@pytest.mark.parametrize(
    ("tres", "gpus"),
    [
        ("billing=1,cpu=1,gres/gpu:tesla=2,gres/gpu=2,mem=1000M,node=1", 2),  # as sacct -P lists them
        ("cpu=4,gres/gpu=4,gres/gpu:a100=2,gres/gpu:v100=2", 4),  # two types: gres/gpu is the count
        ("cpu=4,gres/gpu:a100=2,gres/gpu:v100=1", 3),  # a site tracking typed GPUs only: their sum
        ("cpu=4,gres/gpumem=40G,gres/gpu:a100:x=1", 0),
        ("cpu=4,mem=1G", 0),
    ],
)
def test_gpu_count_is_gres_gpu_whatever_the_order(tres: str, gpus: int) -> None:
    pairs = [(name, value) for name, _, value in (item.partition("=") for item in tres.split(","))]
    assert accounting.tres_count(pairs, "gres/gpu") == gpus
    assert accounting.tres_count(reversed(pairs), "gres/gpu") == gpus
    assert accounting.tres_count(pairs, "cpu") == (1 if "cpu=1" in tres else 4)


def test_steps_and_jobs_without_an_id_are_no_records() -> None:
    doc = _json("sacct-json-steps.json")  # sacct --json without -X: steps inside each job's record
    window = accounting_json.window({**doc, "jobs": [*doc["jobs"], {"job_id": 0}, "not a job"]})
    ids = [r["JobID"] for _, r in window.records]
    assert ids and all("." not in job for job in ids)
    assert len(ids) == len({j["job_id"] for j in doc["jobs"]})
