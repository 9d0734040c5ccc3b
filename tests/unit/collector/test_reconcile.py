"""Slurm JSON parsing (22.05 captures and 23.02+ shapes) and the reconciler, with fake Slurm CLIs on PATH."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN_PASSWORD, login
from jobpulse.collector.services import reconcile
from jobpulse.collector.services.events import EventBus, JobEnded, JobStarted
from jobpulse.collector.slurm import cli, parse
from jobpulse.collector.store import jobs
from jobpulse.collector.store.sqlite import SqliteStore
from litestar.testing import AsyncTestClient
from support import FIXTURES

SLURM = FIXTURES / "slurm"


def fake_slurm(bin_dir: Path, monkeypatch: pytest.MonkeyPatch, **outputs: str | None) -> None:
    """squeue/sacct/scontrol scripts printing fixture files; None = "accounting storage is disabled"."""
    bin_dir.mkdir(exist_ok=True)
    for tool, fixture in outputs.items():
        script = bin_dir / tool
        if fixture is None:
            script.write_text("#!/bin/sh\necho 'Slurm accounting storage is disabled'\nexit 1\n")
        else:
            script.write_text(f'#!/bin/sh\necho "$@" >> {bin_dir}/{tool}.args\ncat {SLURM / fixture}\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_number_accepts_plain_and_wrapped() -> None:
    assert parse.number(5) == 5
    assert parse.number({"set": True, "infinite": False, "number": 5}) == 5
    assert parse.number({"set": False, "infinite": False, "number": 5}) is None
    assert parse.number({"set": True, "infinite": True, "number": 0}) is None
    assert parse.number(None) is None and parse.number("12") == 12


def test_real_sacct_22_05_capture() -> None:
    [job] = parse.jobs(json.loads((SLURM / "sacct-json-job1.json").read_text()), "sacct")
    assert (job.job_id, job.user, job.account, job.partition, job.cluster, job.nodelist) == (
        1,
        "root",
        "root",
        "compute",
        "testcluster",
        "vm",
    )
    assert (job.start, job.end, job.state, job.exit_code, job.cpus) == (
        1795404595,
        1795404615,
        "COMPLETED",
        0,
        1,
    )
    assert job.mem_requested_bytes == 1000 * 2**20 and job.ended
    assert job.tasks == 1  # a batch job: its batch and extern steps have one task each


def test_real_squeue_and_scontrol_captures() -> None:
    done, running = parse.jobs(json.loads((SLURM / "squeue-json-running.json").read_text()), "squeue")
    assert (done.job_id, done.user, done.uid, done.cpus, done.num_nodes, done.start) == (
        1,
        "root",
        0,
        1,
        1,
        1795404595,
    )
    assert (done.state, done.end, done.exit_code, done.ended) == ("COMPLETED", 1795404615, 0, True)
    assert (running.job_id, running.state, running.running, running.start) == (2, "RUNNING", True, 1795404625)
    shown = parse.from_scontrol((SLURM / "scontrol-show-job-running.txt").read_text())
    assert shown is not None
    assert (shown.job_id, shown.user, shown.uid, shown.state, shown.cpus, shown.nodelist) == (
        2,
        "root",
        0,
        "RUNNING",
        1,
        "vm",
    )
    assert shown.running and shown.end is None


def test_newer_slurm_shapes() -> None:
    [running] = parse.jobs(json.loads((SLURM / "squeue-json-v0040-crafted.json").read_text()), "squeue")
    assert (running.job_id, running.user, running.uid, running.state, running.end, running.cpus) == (
        7,
        "alice",
        1000,
        "RUNNING",
        None,
        1,
    )
    failed, cancelled = parse.jobs(json.loads((SLURM / "sacct-json-v0040-crafted.json").read_text()), "sacct")
    assert (failed.job_id, failed.state, failed.exit_code, failed.start, failed.end) == (
        8,
        "FAILED",
        3,
        1795404700,
        1795404760,
    )
    assert (cancelled.job_id, cancelled.state, cancelled.exit_code) == (9, "CANCELLED", 143)


async def test_reconciler_fills_missed_starts_and_closes_missed_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fx_store: SqliteStore
) -> None:
    fake_slurm(
        tmp_path / "bin",
        monkeypatch,
        squeue="squeue-json-v0040-crafted.json",
        sacct="sacct-json-v0040-crafted.json",
    )
    # job 8's prolog reached us, its epilog did not; jobs 7 and 9 were never reported at all
    jobs.record_start(fx_store.writer, "testcluster", 8, 1795404701, {"user_name": "root"}, "prolog")
    outcome = await reconcile.reconcile_once(fx_store, lookback=3600)
    assert (outcome.seen, outcome.running, outcome.ended, outcome.error) == (3, 1, 2, "")
    rows = {r["job_id"]: dict(r) for r in fx_store.writer.execute("SELECT * FROM jobs")}
    assert (rows[7]["is_running"], rows[7]["user_name"], rows[7]["source"], rows[7]["partition"]) == (
        1,
        "alice",
        "reconciler",
        "compute",
    )
    assert (
        rows[8]["is_running"],
        rows[8]["stop_time"],
        rows[8]["state"],
        rows[8]["exit_code"],
        rows[8]["source"],
    ) == (0, 1795404760, "FAILED", 3, "prolog")
    assert (rows[9]["is_running"], rows[9]["state"], rows[9]["exit_code"], rows[9]["start_time"]) == (
        0,
        "CANCELLED",
        143,
        1795404700,
    )
    args = (tmp_path / "bin" / "sacct.args").read_text()
    assert "--json" in args and "-S" in args
    # a second pass changes nothing
    before = [tuple(r) for r in fx_store.writer.execute("SELECT * FROM jobs ORDER BY run_id")]
    await reconcile.reconcile_once(fx_store, lookback=3600)
    assert [tuple(r) for r in fx_store.writer.execute("SELECT * FROM jobs ORDER BY run_id")] == before


async def test_reconciler_publishes_the_runs_it_creates_and_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fx_store: SqliteStore
) -> None:
    fake_slurm(
        tmp_path / "bin",
        monkeypatch,
        squeue="squeue-json-v0040-crafted.json",
        sacct="sacct-json-v0040-crafted.json",
    )
    jobs.record_start(fx_store.writer, "testcluster", 8, 1795404701, {"user_name": "root"}, "prolog")
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe((JobStarted, JobEnded), seen.append)
    await reconcile.reconcile_once(fx_store, lookback=3600, bus=bus)
    for _ in range(100):  # the bus hands events to subscribers in later callbacks
        if len(seen) >= 4:
            break
        await asyncio.sleep(0.01)
    rows = {r["job_id"]: dict(r) for r in fx_store.writer.execute("SELECT * FROM jobs")}
    # 7 and 9 were never reported (9 also ended); 8's prolog was, its end only by Slurm
    assert sorted(seen, key=lambda e: (e.job_id, type(e).__name__)) == [
        JobStarted(7, "", rows[7]["start_time"], "reconciler"),
        JobEnded(8, "", "FAILED", 1795404760, "reconciler"),
        JobEnded(9, "", "CANCELLED", rows[9]["stop_time"], "reconciler"),
        JobStarted(9, "", 1795404700, "reconciler"),
    ]
    seen.clear()
    await reconcile.reconcile_once(fx_store, lookback=3600, bus=bus)  # nothing changes: nothing published
    await asyncio.sleep(0.05)
    assert seen == []


async def test_reconciler_without_accounting_uses_squeue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fx_store: SqliteStore
) -> None:
    fake_slurm(tmp_path / "bin", monkeypatch, squeue="squeue-json-v0040-crafted.json", sacct=None)
    outcome = await reconcile.reconcile_once(fx_store, lookback=3600)
    assert outcome.seen == 1 and "accounting storage is disabled" in outcome.error
    assert [r["job_id"] for r in fx_store.writer.execute("SELECT job_id FROM jobs")] == [7]


def test_reconciler_is_off_without_slurm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not reconcile.enabled("auto") and not reconcile.enabled("off") and reconcile.enabled("on")
    with pytest.raises(cli.SlurmUnavailable, match="squeue not found"):
        cli.squeue()
    fake_slurm(tmp_path / "bin", monkeypatch, squeue="squeue-json-running.json")
    assert reconcile.enabled("auto")
    assert not reconcile.enabled("maybe")  # a typo turns it off (with a warning), never crashes the collector


async def test_refresh_metadata_rereads_slurm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fx_client: AsyncTestClient, fx_store: SqliteStore
) -> None:
    # scontrol fails for an unknown job (as the real one does: "Invalid job id specified", exit 1)
    fake_slurm(
        tmp_path / "bin",
        monkeypatch,
        squeue="squeue-json-running.json",
        sacct="sacct-json-job1.json",
        scontrol=None,
    )
    # the hooks had recorded job 1 with a wrong partition and no end
    jobs.record_start(
        fx_store.writer, "testcluster", 1, 1795404596, {"partition": "wrong", "user_name": "root"}, "prolog"
    )
    token = await login(fx_client, "admin", ADMIN_PASSWORD)
    response = await fx_client.post(
        "/api/admin/refresh_metadata/1", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    meta = response.json()
    assert (
        meta["Id"],
        meta["Partition"],
        meta["IsRunning"],
        meta["StopTime"],
        meta["State"],
        meta["Cpus"],
    ) == (1, "compute", False, 1795404615, "COMPLETED", 1)
    assert fx_store.writer.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1
    user = await login(fx_client, "alice", "alice-password")
    forbidden = await fx_client.post(
        "/api/admin/refresh_metadata/1", headers={"Authorization": f"Bearer {user}"}
    )
    assert forbidden.status_code == 403
    missing = await fx_client.post(
        "/api/admin/refresh_metadata/99", headers={"Authorization": f"Bearer {token}"}
    )
    assert missing.status_code == 404 and "99" in missing.json()["detail"]
    assert os.path.exists(tmp_path / "bin" / "sacct.args")


async def test_reconciler_corrects_cancelled_jobs_the_epilog_called_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fx_store: SqliteStore
) -> None:
    """Real 22.05 captures: job 1 `exit 3`, jobs 2 and 3 scancel'ed (their epilog saw exit 0:0)."""
    fake_slurm(
        tmp_path / "bin",
        monkeypatch,
        squeue="squeue-json-failed-cancelled.json",
        sacct="sacct-json-failed-cancelled.json",
    )
    db = fx_store.writer
    for job_id, start, end, code, state in (
        (1, 1795408694, 1795408699, 3, "FAILED"),
        (2, 1795408706, 1795408710, 0, "COMPLETED"),
    ):
        jobs.record_start(db, "jobpulse-test", job_id, start, {"user_name": "root"}, "prolog")
        jobs.record_stop(db, "jobpulse-test", job_id, end, state, code, "epilog")
    await reconcile.reconcile_once(fx_store, lookback=3600)
    rows = {r["job_id"]: dict(r) for r in db.execute("SELECT * FROM jobs")}
    assert (rows[1]["state"], rows[1]["exit_code"]) == (
        "FAILED",
        3,
    )  # sacct's return_code 0 does not erase it
    assert (rows[2]["state"], rows[2]["exit_code"], rows[2]["start_time"]) == ("CANCELLED", 143, 1795408706)
    assert (rows[3]["state"], rows[3]["is_running"], rows[3]["source"]) == (
        "CANCELLED",
        0,
        "reconciler",
    )  # no hook at all
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 3


async def test_unreachable_slurmctld_is_logged_once_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fx_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The Slurm CLI is installed but slurmctld does not answer (as on a collector host whose Slurm is
    down): every pass fails, the log says so once, with no traceback, and the collector goes on."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "squeue"
    script.write_text("#!/bin/sh\necho 'squeue: error: fetch_config: DNS SRV lookup failed' >&2\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    caplog.set_level(logging.INFO, logger="jobpulse.collector.services.reconcile")
    task = asyncio.create_task(reconcile.run_forever(fx_store, 0.05, 3600))
    await asyncio.sleep(0.6)  # several passes
    task.cancel()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "does not answer" in warnings[0].getMessage(), warnings
    assert all(r.exc_info is None for r in caplog.records)
