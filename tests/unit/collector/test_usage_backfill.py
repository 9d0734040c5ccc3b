"""``jobpulse-collector backfill-sacct`` (issue 18) against a fake sacct built on real sacct output
(tests/fixtures/slurm/fake_sacct.py over rows derived from sacct-P-all-job1.txt, Slurm 22.05): exactly
the finished jobs submitted in the window are stored, week by week; a second run adds nothing; a run
stopped by a failing sacct goes on from the week it stopped at."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from jobpulse.collector import cli
from jobpulse.collector.slurm import accounting
from support import FIXTURES

REAL = FIXTURES / "slurm" / "sacct-P-all-job1.txt"


def real_rows() -> tuple[list[str], list[dict[str, str]]]:
    lines = REAL.read_text().splitlines()
    header = lines[0].split("|")
    parsed = accounting.split_lines("\n".join(lines[1:]), len(header))
    return header, [dict(zip(header, p, strict=True)) for p in parsed]


def build_table(path: Path, later: bool = False) -> set[str]:
    """The real job 1 (with its steps), plus jobs made from it: other ids, users, weeks and states.
    Returns the job ids a backfill of 2026-11-01..2026-11-30 must store. ``later``: the same table
    once the running job 6 has ended and the pending job 7 was cancelled."""
    header, rows = real_rows()
    job = next(r for r in rows if r["JobID"] == "1")
    steps = [r for r in rows if r["JobID"] != "1"]
    out = [*rows]

    def variant(job_id: str, day: int, **fields: str) -> None:
        row = dict(job)
        day_ = f"2026-11-{day:02d}"
        row.update(JobID=job_id, JobIDRaw=job_id.split("_")[0].split("+")[0], Submit=f"{day_}T03:29:54",
                   Eligible=f"{day_}T03:29:54", Start=f"{day_}T03:29:55", End=f"{day_}T05:29:55",
                   Elapsed="02:00:00", ElapsedRaw="7200", CPUTimeRAW="7200")  # fmt: skip
        row.update(fields)
        out.append(row)
        for step in steps:  # the real steps, renumbered
            s = dict(step)
            s["JobID"] = s["JobID"].replace("1.", f"{job_id}.", 1)
            out.append(s)

    variant("2", 2, User="alice", AllocTRES="billing=8,cpu=8,gres/gpu=2,mem=8G,node=1")
    variant("3", 9, User="bob", State="FAILED", Account="proj2")
    variant("4_1", 16, User="bob", State="CANCELLED by 0")
    variant("5+0", 24, User="carol", State="TIMEOUT")
    if later:
        variant("6", 25, User="carol")
        variant("7", 26, User="dave", State="CANCELLED by 0", Start="Unknown", End="2026-11-26T04:00:00")
    else:
        variant("6", 25, User="carol", State="RUNNING", End="Unknown")  # still running: left for later
        variant("7", 26, User="dave", State="PENDING", Start="Unknown", End="Unknown")
    variant("8", 2, User="erin")
    out[-1 - len(steps)]["Submit"] = "2026-10-20T00:00:00"  # submitted before --since: not this backfill's
    path.write_text("|".join(header) + "\n" + "\n".join("|".join(r[h] for h in header) for r in out) + "\n")
    return {"2", "3", "4_1", "5+0"} | ({"1"} if job["Submit"].startswith("2026-11") else set())


@pytest.fixture
def fx_sacct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, set[str]]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sacct").symlink_to(FIXTURES / "slurm" / "fake_sacct.py")
    table = tmp_path / "sacct-table.txt"
    expected = build_table(table)
    log = tmp_path / "sacct-calls.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SACCT_TABLE", str(table))
    monkeypatch.setenv("FAKE_SACCT_LOG", str(log))
    return log, expected


def stored(state: Path) -> dict[str, tuple[str, str, float, str]]:
    with sqlite3.connect(state / "jobpulse.db") as db:
        return {
            job: (cluster, state_, cpu, source)
            for job, cluster, state_, cpu, source in db.execute(
                "SELECT job, cluster, state, cpu_hours, source FROM usage_jobs"
            )
        }


def backfill(state: Path, *extra: str) -> int:
    args = ["backfill-sacct", "--state-dir", str(state), "--config", str(state / "no-config.toml")]
    args += ["--since", "2026-11-01", "--until", "2026-11-30"]
    return cli.main([*args, *extra])


def test_backfill_stores_exactly_the_finished_jobs_and_a_second_run_adds_nothing(
    tmp_path: Path, fx_sacct: tuple[Path, set[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    log, expected = fx_sacct
    state = tmp_path / "state"
    assert backfill(state) == 0
    jobs = stored(state)
    assert set(jobs) == expected
    assert jobs["2"] == ("testcluster", "COMPLETED", 16.0, "sacct")  # cpu=8 x 2 h, from AllocTRES
    assert jobs["4_1"][1] == "CANCELLED"
    calls = log.read_text().splitlines()
    assert len(calls) == 5  # 30 days: four weeks and two days
    assert "--starttime=2026-11-01" in calls[0] and "--endtime=2026-11-08" in calls[0]
    assert "--allocations" in calls[0] and "--parsable2" in calls[0]
    err = capsys.readouterr()
    assert "week 5/5" in err.err and f"{len(expected)} new" in err.out

    assert "2 not finished yet" in err.err  # week 4: job 6 still running, job 7 still pending

    # The same dates again: the first three weeks were over and done; week 4 still had jobs unfinished,
    # so it and the week after it are asked again, and nothing is added.
    assert backfill(state) == 0
    again = log.read_text().splitlines()[5:]
    assert len(again) == 2 and "--starttime=2026-11-22" in again[0]
    assert stored(state) == jobs
    assert "0 new" in capsys.readouterr().out
    assert backfill(state, "--restart") == 0  # every week asked again of sacct: nothing new
    assert stored(state) == jobs
    assert "0 new" in capsys.readouterr().out


def test_a_job_running_at_the_first_run_is_stored_by_the_next_one(
    tmp_path: Path, fx_sacct: tuple[Path, set[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    log, expected = fx_sacct
    state = tmp_path / "state"
    assert backfill(state) == 0
    assert {"6", "7"}.isdisjoint(stored(state))
    build_table(Path(os.environ["FAKE_SACCT_TABLE"]), later=True)
    assert backfill(state) == 0  # the same dates: week 4 was left open for them
    jobs = stored(state)
    assert set(jobs) == expected | {"6", "7"}
    assert (jobs["6"][1], jobs["7"][1]) == ("COMPLETED", "CANCELLED")
    assert "2 new" in capsys.readouterr().out
    assert backfill(state) == 0  # now every week is done: sacct is not asked again
    assert len(log.read_text().splitlines()) == 5 + 2


def test_a_stopped_backfill_goes_on_from_the_week_it_stopped_at(
    tmp_path: Path,
    fx_sacct: tuple[Path, set[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log, expected = fx_sacct
    state = tmp_path / "state"
    monkeypatch.setenv("FAKE_SACCT_FAIL_ON", "2026-11-15")
    assert backfill(state) == 1
    assert "Problem talking to the database" in capsys.readouterr().err
    assert set(stored(state)) == {"2", "3"}  # the first two weeks (the real job 1 ran on 2026-11-23)
    monkeypatch.delenv("FAKE_SACCT_FAIL_ON")
    before = len(log.read_text().splitlines())
    assert backfill(state) == 0
    after = log.read_text().splitlines()[before:]
    assert len(after) == 3 and "--starttime=2026-11-15" in after[0]
    assert set(stored(state)) == expected


def test_bad_dates_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # never the host's /etc/jobpulse/collector.toml (a node with jobpulse installed)
    config = ["--config", str(tmp_path / "no-config.toml")]
    assert cli.main(["backfill-sacct", "--state-dir", str(tmp_path), *config, "--since", "last week"]) == 2
    assert "--since" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "backfill-sacct",
                "--state-dir",
                str(tmp_path),
                *config,
                "--since",
                "2026-02-01",
                "--until",
                "2026-01-01",
            ]
        )
        == 2
    )


def test_without_sacct_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert (
        cli.main(
            [
                "backfill-sacct",
                "--state-dir",
                str(tmp_path / "s"),
                "--config",
                str(tmp_path / "no-config.toml"),
                "--since",
                "2026-01-01",
                "--until",
                "2026-01-02",
            ]
        )
        == 1
    )
    assert "sacct not found" in capsys.readouterr().err


WEEK_JSON = FIXTURES / "slurm" / "sacct-json-backfill-week.json"  # one real week, both ways at once
WEEK_TEXT = FIXTURES / "slurm" / "sacct-P-backfill-week.txt"


def all_rows(state: Path) -> dict[str, tuple[object, ...]]:
    """Every stored column of every row but the time it was written."""
    with sqlite3.connect(state / "jobpulse.db") as db:
        db.row_factory = sqlite3.Row
        return {
            row["job"]: tuple(row[k] for k in row.keys() if k != "updated")  # noqa: SIM118 (sqlite3.Row)
            for row in db.execute("SELECT * FROM usage_jobs")
        }


@pytest.mark.usefixtures("fx_utc")
def test_json_and_parsable_store_the_same_rows_and_auto_picks_json_from_21_08(
    tmp_path: Path,
    fx_sacct: tuple[Path, set[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = fx_sacct
    Path(os.environ["FAKE_SACCT_TABLE"]).write_text(
        "|".join(accounting.FIELDS) + "\n" + WEEK_TEXT.read_text()
    )
    monkeypatch.setenv("FAKE_SACCT_JSON", str(WEEK_JSON))
    week = ("--since", "2026-11-27", "--until", "2026-12-07")  # a week without jobs, then the real one
    assert backfill(tmp_path / "parsable", *week, "--format", "parsable") == 0
    assert "reading sacct --parsable2 (asked for)" in capsys.readouterr().err
    assert backfill(tmp_path / "json", *week, "--format", "json") == 0
    out = capsys.readouterr()
    assert "reading sacct --json (asked for)" in out.err and "13 new (sacct --json)" in out.out
    monkeypatch.setenv("FAKE_SACCT_VERSION", "slurm-wlm 22.05.8")
    assert backfill(tmp_path / "auto", *week) == 0
    assert "reading sacct --json (sacct says 'slurm-wlm 22.05.8'" in capsys.readouterr().err
    rows = all_rows(tmp_path / "parsable")
    assert len(rows) == 13 and {"955", "956_1", "957+1", "959"} <= set(rows)  # 3 nodes, array, het, never ran
    assert all_rows(tmp_path / "json") == rows == all_rows(tmp_path / "auto")
    calls = log.read_text().splitlines()
    assert ["--json" in c for c in calls] == [False, False, True, True, True, True]
    # parsable over what json stored: every row the same
    assert backfill(tmp_path / "json", *week, "--format", "parsable", "--restart") == 0
    assert "0 new" in capsys.readouterr().out and all_rows(tmp_path / "json") == rows


def test_auto_on_a_sacct_without_json_reads_parsable(
    tmp_path: Path, fx_sacct: tuple[Path, set[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    log, expected = fx_sacct  # the fake says it is Slurm 20.11 and refuses --json as that one does
    assert backfill(tmp_path / "state") == 0
    out = capsys.readouterr()
    assert "reading sacct --parsable2 (sacct says 'slurm 20.11.9'; --json only since 21.08)" in out.err
    assert f"{len(expected)} new (sacct --parsable2)" in out.out
    assert not any("--json" in call for call in log.read_text().splitlines())


def test_format_json_on_a_sacct_without_it_is_a_clear_error(
    tmp_path: Path, fx_sacct: tuple[Path, set[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert backfill(tmp_path / "state", "--format", "json") == 1
    err = capsys.readouterr().err
    assert "sacct: unrecognized option '--json'" in err and "use --format parsable or auto" in err
    assert "Traceback" not in err and "run again" not in err
