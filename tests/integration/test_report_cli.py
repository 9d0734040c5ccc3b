"""`jobpulse report` and `jobpulse mail` against a real collector, a real agent and a real job.

The report is a client of the HTTP API: these tests run the command as a user would (a subprocess with
JOBPULSE_URL and JOBPULSE_API_KEY in its environment) and read what it prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Collector, start_agent, start_collector, stop, unique_job_id, wait_for

MAILPROG = Path(__file__).resolve().parents[2] / "packaging" / "slurm" / "mailprog.sh"
BURN = """
import time
block = bytearray(b"x") * (150 * 1024 * 1024)
while time.process_time() < 1.5:
    pass
time.sleep(1.0)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A collector that summarizes a job a second after it ends, an agent, and one finished job of root's."""
    tmp = tmp_path_factory.mktemp("report")
    collector = start_collector(
        tmp / "collector",
        # findings for a job of seconds too (by default only jobs of 5 minutes or more get them)
        env={
            "JOBPULSE_SUMMARY_DELAY": "1",
            "JOBPULSE_SUMMARY_INTERVAL": "1",
            "JOBPULSE_FINDING_MIN_DURATION": "0",
        },
    )
    agent = start_agent(
        tmp / "agent", collector.grpc_target, "--node", "rn1", "--cgroup-root", str(tmp / "none")
    )
    try:
        job = unique_job_id()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "jobpulse.agent.cli",
                "exec",
                "--state-dir",
                str(tmp / "agent"),
                "--socket",
                str(tmp / "agent" / "agent.sock"),
                "--cgroup-root",
                str(tmp / "none"),
                "--node",
                "rn1",
                "--job-id",
                str(job),
                "--name",
                "burn",
                "--",
                sys.executable,
                "-c",
                BURN,
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        wait_for(lambda: collector.get(f"/api/job/{job}").json().get("Summary"), 30, "the job's summary")
        _cli(collector, "add-user", "alice", "--roles", "user", stdin="alice-password\n")
        yield {
            "collector": collector,
            "job": job,
            "admin_key": _cli(collector, "create-api-key", "--role", "admin", "--owner", "admin").strip(),
            "alice_key": _cli(collector, "create-api-key", "--role", "user", "--owner", "alice").strip(),
            "tmp": tmp,
        }
    finally:
        stop(agent)
        stop(collector.proc)


def _cli(collector: Collector, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "jobpulse.collector.cli", *args, "--state-dir", str(collector.state)],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _jobpulse(*args: str, url: str, key: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPULSE_")}
    env.update({"JOBPULSE_URL": url, "XDG_CONFIG_HOME": "/nonexistent"})
    if key:
        env["JOBPULSE_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "jobpulse.collector.tool", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_report_of_a_finished_job(site: dict[str, object]) -> None:
    collector, job = site["collector"], site["job"]
    assert isinstance(collector, Collector)
    done = _jobpulse("report", str(job), url=collector.url, key=str(site["admin_key"]))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"Job ID: {job}" in out and "Job Name: burn" in out and "User/Group: root/" in out
    assert "State: COMPLETED (exit code 0)" in out
    assert "Nodes: 1 (rn1)" in out
    assert "CPU utilization" in out and "[|" in out  # a bar with its share
    assert "rn1: 00:00:0" in out  # per node: CPU time used / given
    assert "CPU memory usage     peak 1" in out and "no memory limit" in out  # process tree: no limit
    assert "\033[" not in out  # not a terminal: no colour codes
    assert "Notes" in out and "rough guide" in out  # a 3-second job says its figures are thin
    findings = collector.get(f"/api/job/{job}").json()["Findings"]
    assert findings, "a job using a quarter of its cores has a finding"
    for finding in findings:  # each of the job's findings, with its hint
        assert finding["hint"].split()[0] in out and finding["hint"][-20:] in out.replace("\n    ", " ")


def test_report_json_matches_the_summary(site: dict[str, object]) -> None:
    collector, job = site["collector"], site["job"]
    assert isinstance(collector, Collector)
    done = _jobpulse("report", str(job), "--json", url=collector.url, key=str(site["admin_key"]))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    summary = collector.get(f"/api/job/{job}").json()["Summary"]
    assert report["complete"] is True and report["job"]["id"] == str(job)
    [node] = report["nodes"]
    assert node["node"] == "rn1" and node["cpu_seconds"] == summary["nodes"][0]["cpu_seconds"]
    assert node["cpu_seconds"] == pytest.approx(1.5, rel=0.35)
    assert 140 * 2**20 < node["mem_peak"] < 400 * 2**20


def test_unknown_job_bad_id_other_users_job_and_no_collector(site: dict[str, object]) -> None:
    collector, job = site["collector"], site["job"]
    assert isinstance(collector, Collector)
    unknown = _jobpulse("report", "4000000000", url=collector.url, key=str(site["admin_key"]))
    assert unknown.returncode == 1 and "no job 4000000000 that you may see" in unknown.stderr
    bad = _jobpulse("report", "12a", url=collector.url, key=str(site["admin_key"]))
    assert bad.returncode == 2 and "'12a' is not a Slurm job id" in bad.stderr and not bad.stdout
    theirs = _jobpulse("report", str(job), url=collector.url, key=str(site["alice_key"]))
    assert theirs.returncode == 1 and f"no job {job} that you may see" in theirs.stderr  # root's job
    anonymous = _jobpulse("report", str(job), url=collector.url)
    assert anonymous.returncode == 2 and "no credential given" in anonymous.stderr
    down = _jobpulse("report", str(job), url="http://127.0.0.1:9", key="x")
    assert down.returncode == 3 and "cannot reach the jobpulse collector" in down.stderr
    assert "Traceback" not in unknown.stderr + bad.stderr + theirs.stderr + anonymous.stderr + down.stderr


def _mailer(tmp: Path) -> Path:
    """Stands in for /usr/bin/mail (no mail server here): keeps its arguments and the body it was given."""
    script = tmp / "mail"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp}/mail.args\ncat > {tmp}/mail.body\n')
    script.chmod(0o755)
    return script


def test_mailprog_sends_the_report_with_slurms_mail(site: dict[str, object]) -> None:
    collector, job, tmp = site["collector"], site["job"], site["tmp"]
    assert isinstance(collector, Collector) and isinstance(tmp, Path)
    mailer = _mailer(tmp)
    subject = f"Slurm Job_id={job} Name=burn Ended, Run time 00:00:03, COMPLETED, ExitCode 0"
    # the shipped MailProg script, called as slurmctld calls it
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBPULSE_")}
    env |= {
        "JOBPULSE_BIN": str(Path(sys.executable).parent / "jobpulse"),
        "JOBPULSE_MAILER": str(mailer),
        "JOBPULSE_URL": collector.url,
        "JOBPULSE_API_KEY": str(site["admin_key"]),
        "XDG_CONFIG_HOME": "/nonexistent",
    }
    done = subprocess.run(
        [str(MAILPROG), "-s", subject, "alice@example.org"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp / "mail.args").read_text().splitlines() == ["-s", subject, "alice@example.org"]
    body = (tmp / "mail.body").read_text()
    assert f"Job ID: {job}" in body and "CPU utilization" in body and "\033[" not in body

    began = f"Slurm Job_id={job} Name=burn Began, Queued time 00:00:01"
    assert _jobpulse("mail", "-s", began, "a@b", "--mailer", str(mailer), url=collector.url).returncode == 0
    assert (tmp / "mail.body").read_text() == ""  # a start mail stays as Slurm wrote it


def test_mailprog_never_loses_the_mail(site: dict[str, object]) -> None:
    tmp = site["tmp"]
    assert isinstance(tmp, Path)
    mailer = _mailer(tmp)
    subject = "Slurm Job_id=77 Name=x Failed, Run time 00:00:03, FAILED, ExitCode 1"
    done = _jobpulse("mail", "-s", subject, "a@b", "--mailer", str(mailer), url="http://127.0.0.1:9")
    assert done.returncode == 0, done.stderr
    assert (tmp / "mail.args").read_text().splitlines() == ["-s", subject, "a@b"]
    assert "(no jobpulse report: cannot reach the jobpulse collector" in (tmp / "mail.body").read_text()
