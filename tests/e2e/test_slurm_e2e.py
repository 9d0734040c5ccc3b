"""End to end on a real multi-node Slurm (Debian's 22.05): sbatch jobs while real agents and a collector run.

scripts/slurm-cluster.sh --nodes 3 brings up munge, MariaDB, slurmdbd, slurmctld and three slurmd on
loopback (one host, each slurmd its own node, port and cgroup root ``slurm_<node>``), with
Prolog/Epilog = this repository's packaged hook scripts calling this checkout's jobpulse-agent. Each
node has its own agent (``--node``, its own state dir and socket; the hooks find it through
``${SLURMD_NODENAME}`` in jobpulse-hook.env), all sending to one collector, which runs the reconciler
against the same cluster. Where the cluster cannot start (no packages, not root, no cgroup v1) the
module skips with the reason; CI sets JOBPULSE_REQUIRE_SLURM=1 so that a skip there is a failure
instead. docs/slurm-test-cluster.md describes the cluster.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import (
    ROOT,
    Collector,
    parse_slurm_duration,
    raw_cpu_seconds,
    raw_series,
    start_agent,
    start_collector,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slurm

SCRIPT = ROOT / "scripts" / "slurm-cluster.sh"
NODES = 3
CPU_SECONDS = 4.0
# Busy for that many CPU-seconds (mostly user time: the clock is read once per 100,000 additions).
BUSY = "import time\nwhile time.process_time() < {seconds}: sum(range(100000))"
BURN = f"""python3 -c '
import time
while time.process_time() < {CPU_SECONDS}:
    pass
'
"""
MEMORY = """python3 -c '
import time
block = bytearray(300 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
time.sleep(3)
'
"""


@dataclass
class Cluster:
    dir: Path
    env: dict[str, str]
    collector: Collector
    accounting: bool
    nodes: list[str]

    def run(self, *args: str) -> str:
        done = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        return done.stdout

    def sbatch(self, script: str, *options: str) -> int:
        out = self.run("sbatch", "--parsable", "-o", "/dev/null", *options, "--wrap", script)
        return int(out.strip().split(";")[0])

    def job(self, job_id: int) -> dict[str, Any] | None:
        response = self.collector.get(f"/api/job/{job_id}?raw=true")
        return response.json() if response.status_code == 200 else None

    def finished(self, job_id: int, timeout: float = 90) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            doc = self.job(job_id)
            return doc if doc and not doc["Metadata"]["IsRunning"] else None

        return wait_for(done, timeout, f"job {job_id} recorded as ended")

    def sacct_total_cpu(self, job_id: int) -> float:
        # The allocation line (-X) of 22.05 shows 00:00:00; the job's own line sums its steps.
        def total() -> float | None:
            out = self.run("sacct", "-n", "-P", "-o", "JobID,TotalCPU", "-j", str(job_id))
            for line in out.splitlines():
                name, _, value = line.partition("|")
                if name == str(job_id) and parse_slurm_duration(value) > 0:
                    return parse_slurm_duration(value)
            return None

        return wait_for(total, 30, f"sacct TotalCPU of job {job_id}")


def _start_cluster(directory: Path, env: dict[str, str]) -> str | None:
    done = subprocess.run(
        ["bash", str(SCRIPT), "start", "--nodes", str(NODES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        return (done.stderr.strip() or done.stdout.strip())[-800:]
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = Path("/tmp") / f"jobpulse-slurm-e2e-{os.getpid()}"
    env = {
        **os.environ,
        "JOBPULSE_SLURM_DIR": str(directory),
        "JOBPULSE_SLURM_FIRST_JOB_ID": str(5_000_000 + (os.getpid() % 100_000) * 10),
        # Node names of their own (p<pid>n1...): their cgroup roots are apart from other runs' on this host.
        "JOBPULSE_SLURM_NODE_PREFIX": f"p{os.getpid() % 100_000}n",
    }
    reason = _start_cluster(directory, env)
    if reason is not None:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, check=False)
        if os.environ.get("JOBPULSE_REQUIRE_SLURM") == "1":
            pytest.fail(f"real Slurm required here but it did not start: {reason}")
        pytest.skip(f"no real Slurm cluster on this machine: {reason}")
    slurm_env = dict(env)
    for line in (directory / "cluster.env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        slurm_env[key] = value
    state = tmp_path_factory.mktemp("slurm-e2e")
    collector = start_collector(
        state / "collector",
        env={
            "SLURM_CONF": slurm_env["SLURM_CONF"],
            "JOBPULSE_RECONCILE": "on",
            "JOBPULSE_RECONCILE_INTERVAL": "2",
            # summaries and findings soon after a job ends
            "JOBPULSE_SUMMARY_INTERVAL": "2",
            "JOBPULSE_SUMMARY_DELAY": "3",
        },
    )
    nodes = slurm_env["JOBPULSE_SLURM_NODES"].split(",")
    agents_state = state / "agents"
    agents = [
        start_agent(
            agents_state / node,
            collector.grpc_target,
            "--cluster",
            slurm_env["JOBPULSE_SLURM_CLUSTER"],
            "--node",
            node,
        )
        for node in nodes
    ]
    # The hook script sources this file: each node's hooks reach that node's agent.
    (directory / "etc" / "jobpulse-hook.env").write_text(
        f"JOBPULSE_AGENT={ROOT / '.venv' / 'bin' / 'jobpulse-agent'}\n"
        f"JOBPULSE_STATE_DIR={agents_state}/${{SLURMD_NODENAME}}\n"
        f"JOBPULSE_SOCKET={agents_state}/${{SLURMD_NODENAME}}/agent.sock\n"
        f"JOBPULSE_AGENT_CONFIG={os.environ['JOBPULSE_AGENT_CONFIG']}\n"  # never the host's agent.toml
    )
    try:
        yield Cluster(
            directory, slurm_env, collector, slurm_env.get("JOBPULSE_SLURM_ACCOUNTING") == "yes", nodes
        )
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120, check=False)
        for agent in agents:
            stop(agent)
        stop(collector.proc)
        subprocess.run(["rm", "-rf", str(directory)], check=False)


def test_cpu_and_memory_jobs_are_measured_like_slurm_accounts_them(cluster: Cluster) -> None:
    cpu_job = cluster.sbatch(BURN, "-J", "burn")
    mem_job = cluster.sbatch(MEMORY, "-J", "mem", "--mem=600M")
    burn = cluster.finished(cpu_job)
    mem = cluster.finished(mem_job)
    for doc, name in ((burn, "burn"), (mem, "mem")):
        meta = doc["Metadata"]
        assert (meta["UserName"], meta["UserId"], meta["Partition"], meta["Cpus"]) == (
            "root",
            0,
            "compute",
            1,
        )
        assert meta["NodeList"] in cluster.nodes
        # every sample comes from the node the job ran on: no other node's agent reported it
        assert {node for m in doc["MetricData"] for node in m["Data"]} == {meta["NodeList"]}
        assert (meta["ExitCode"], meta["State"], meta["ClusterId"]) == (0, "COMPLETED", "jobpulse-test")
        assert 0 < meta["StartTime"] <= meta["StopTime"]
        assert meta["JobName"] in ("", name)  # the prolog does not see the name; the reconciler fills it in
    measured = raw_cpu_seconds(burn)
    slurm_cpu = cluster.sacct_total_cpu(cpu_job) if cluster.accounting else CPU_SECONDS
    assert measured == pytest.approx(slurm_cpu, rel=0.10), (measured, slurm_cpu)
    assert burn["Metadata"]["StopTime"] - burn["Metadata"]["StartTime"] >= CPU_SECONDS
    peak = max(raw_series(mem, "mem_peak_bytes"))
    assert peak >= 290 * 2**20, peak
    # one run per job, whatever mix of hooks and reconciler passes reported it
    rows = cluster.collector.get("/api/jobs", params={"limit": 1000}).json()["Jobs"]
    assert sorted(j["Id"] for j in rows if j["Id"] in (cpu_job, mem_job)) == sorted([cpu_job, mem_job])


def test_a_two_second_job_is_measured_to_its_end(cluster: Cluster) -> None:
    """The job's cgroup is gone before the epilog runs, and its last tick may be up to a tick before
    its end: the agent reads the job's counters as Slurm removes its steps (oomwatch.py, IN_DELETE)."""
    job = cluster.sbatch(f"python3 -c '{BUSY.format(seconds=2)}'")
    doc = cluster.finished(job)
    measured = raw_cpu_seconds(doc)
    assert measured >= 2.0, measured  # the kernel's: the busy loop alone used 2 CPU-seconds
    if cluster.accounting:
        slurm_cpu = cluster.sacct_total_cpu(job)
        assert measured == pytest.approx(slurm_cpu, rel=0.10), (measured, slurm_cpu)
    assert measured < 2.0 * 1.10 + 0.1, measured  # python's start-up on top, not a tick's worth more


def test_three_node_job_shows_three_nodes_and_a_series_per_node(cluster: Cluster) -> None:
    job = cluster.sbatch(f"srun python3 -c '{BUSY.format(seconds=1.5)}'\nsleep 1", "-N", str(NODES))
    doc = cluster.finished(job)
    meta = doc["Metadata"]
    hostlist = f"{cluster.nodes[0][:-1]}[1-{NODES}]"
    assert (meta["NumNodes"], meta["HostList"], sorted(n["Name"] for n in meta["Nodes"])) == (
        NODES,
        hostlist,
        sorted(cluster.nodes),
    )
    assert meta["NodeList"] == "|".join(cluster.nodes)  # JobMon's NodeList: the names joined by "|"
    for guid in ("cpu_user_seconds", "cpu_system_seconds", "mem_peak_bytes"):
        metric = next(m for m in doc["MetricData"] if m["Config"]["GUID"] == guid)
        assert sorted(metric["Data"]) == sorted(cluster.nodes), guid
    for node in cluster.nodes:
        # each node's own agent measured its share: one srun task burning 1.5 CPU-seconds there
        only = {**doc, "MetricData": [{**m, "Data": {node: m["Data"][node]}} for m in doc["MetricData"]]}
        assert 1.4 < raw_cpu_seconds(only) < 2.5, (node, raw_cpu_seconds(only))
    # the per-node view asks for one node and gets only its series
    one = cluster.collector.get(f"/api/job/{job}", params={"raw": "true", "node": cluster.nodes[1]}).json()
    assert {n for m in one["MetricData"] for n in m["Data"]} == {cluster.nodes[1]}


# The batch script itself (exec) allocates 300 MB under --mem=100M: the cgroup OOM killer kills it and
# Slurm removes the job's cgroups right after, within one tick (multinode.md, job 9).
OOM_SCRIPT = """exec python3 -c '
block = bytearray(300 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
'
"""


def test_oom_killed_job_shows_its_oom_kill_state_and_finding(cluster: Cluster) -> None:
    job = cluster.sbatch(OOM_SCRIPT, "--mem=100M")
    doc = cluster.finished(job)
    # the epilog's 0:125 is Slurm's OOM mark: state OUT_OF_MEMORY, exit code 0 (not 128 + 125)
    assert (doc["Metadata"]["State"], doc["Metadata"]["ExitCode"]) == ("OUT_OF_MEMORY", 0)

    # Counted in the task cgroup while it existed (cgroup v1 counts it nowhere else). It comes with the
    # node's last readings, which may arrive after the reconciler (squeue) already ended the run.
    def counted() -> dict[str, Any] | None:
        found = cluster.job(job)
        return found if found and max(raw_series(found, "oom_kills"), default=0) >= 1 else None

    wait_for(counted, 30, f"the OOM kill of job {job}")

    def findings() -> list[str] | None:
        found = cluster.job(job) or {}
        rules = [f.get("Rule") or f.get("rule") or f.get("Name") for f in found.get("Findings") or []]
        return rules if "oom_killed" in rules else None

    # A summary made before the node's last batch came is made again once it has (its epilog's STOP).
    try:
        rules = wait_for(findings, 60, f"the oom_killed finding of job {job}")
    except AssertionError:
        found = cluster.job(job) or {}
        raise AssertionError(
            f"findings {found.get('Findings')}, oom_kills {raw_series(found, 'oom_kills')}"
        ) from None
    assert "memory_near_limit" not in rules, rules
    if cluster.accounting:
        out = cluster.run("sacct", "-n", "-X", "-P", "-o", "State,ExitCode", "-j", str(job))
        assert out.split() == ["OUT_OF_MEMORY|0:125"]


def test_failing_job_is_recorded_with_its_exit_code(cluster: Cluster) -> None:
    job = cluster.sbatch("exit 3")
    meta = cluster.finished(job)["Metadata"]
    assert (meta["ExitCode"], meta["ExitCodeString"], meta["State"]) == (3, "3:0", "FAILED")
    if cluster.accounting:  # what ExitCode 3 stands for
        out = cluster.run("sacct", "-n", "-X", "-P", "-o", "State,ExitCode", "-j", str(job))
        assert out.split() == ["FAILED|3:0"]


def test_scancel_is_recorded_as_sacct_shows_it(cluster: Cluster) -> None:
    job = cluster.sbatch("sleep 300")
    wait_for(lambda: cluster.job(job), 60, f"job {job} start recorded")
    # The prolog runs before the batch script starts, and a job cancelled in its first moments may have
    # no batch step to signal (sacct: 0:0): cancel it once the script has been running a while.
    sacct = ("sacct", "-n", "-P", "-o", "JobID,State,ExitCode,Start,End", "-j", str(job))
    if cluster.accounting:
        running = f"{job}.batch|RUNNING"
        wait_for(
            lambda: any(line.startswith(running) for line in cluster.run(*sacct).splitlines()), 60, "batch"
        )
    time.sleep(3)
    cluster.run("scancel", str(job))

    def cancelled() -> dict[str, Any] | None:
        doc = cluster.job(job)
        meta = doc["Metadata"] if doc else None
        return meta if meta and (meta["State"], meta["ExitCodeString"]) == ("CANCELLED", "0:15") else None

    # The epilog sees exit 0:0 for a cancelled job; the reconciler (every 2 s here) corrects it from
    # Slurm's records: the state, the signal (sacct shows it on the batch step) and the end time.
    try:
        meta = wait_for(cancelled, 60, f"job {job} recorded as cancelled by signal 15")
    except AssertionError:
        said = cluster.run(*sacct) if cluster.accounting else ""
        raise AssertionError(f"{cluster.job(job)['Metadata']} / sacct: {said}") from None
    assert meta["IsRunning"] is False and meta["ExitCode"] == 128 + 15
    if cluster.accounting:
        rows = {line.split("|")[0]: line.split("|") for line in cluster.run(*sacct).splitlines()}
        assert rows[f"{job}.batch"][1:3] == ["CANCELLED", "0:15"]
        assert rows[str(job)][1].startswith("CANCELLED")

        def epoch(text: str) -> int:
            return int(datetime.fromisoformat(text).timestamp())  # sacct prints local time

        # Slurm's End, not the epilog's clock (about 2 s later)
        assert meta["StopTime"] == epoch(rows[str(job)][4]), (meta["StopTime"], rows[str(job)])
        assert abs(meta["StartTime"] - epoch(rows[str(job)][3])) <= 1


def test_srun_tasks_are_counted_as_slurm_counts_them(cluster: Cluster) -> None:
    job = cluster.sbatch("srun -n 4 sleep 1", "-n", "4")
    expected = 4

    def counted() -> dict[str, Any] | None:
        doc = cluster.job(job)
        meta = doc["Metadata"] if doc else None
        return meta if meta and not meta["IsRunning"] and meta["NumTasks"] == expected else None

    # the prolog does not know it: squeue's tasks while it runs, sacct's srun step after
    meta = wait_for(counted, 60, f"job {job} recorded with NumTasks {expected}")
    assert meta["State"] == "COMPLETED"
    if cluster.accounting:
        out = cluster.run("sacct", "-n", "-P", "-o", "JobID,NTasks", "-j", str(job))
        assert f"{job}.0|{expected}" in out.split(), out


def test_array_tasks_show_as_tasks_of_one_array(cluster: Cluster) -> None:
    out = cluster.run("sbatch", "--parsable", "-o", "/dev/null", "--array=1-3", "--wrap", "sleep 1")
    array = int(out.strip().split(";")[0])

    def tasks() -> list[dict[str, Any]] | None:
        rows = cluster.collector.get("/api/jobs", params={"limit": 1000}).json()["Jobs"]
        mine = [j for j in rows if j.get("ArrayJobId") == array and not j["IsRunning"]]
        return mine if len(mine) == 3 else None

    # The prolog gets no array variables (and the last task runs under the array's own id): the
    # reconciler's squeue/sacct records name the array and the task.
    found = wait_for(tasks, 90, f"three tasks of array {array}")
    assert sorted((j["ArrayTaskId"], j["JobIdString"]) for j in found) == [
        (i, f"{array}_{i}") for i in (1, 2, 3)
    ]
    assert array in {j["Id"] for j in found}  # the last task reuses the array's id
    one = cluster.collector.get(f"/api/job/{array}_2", params={"raw": "true"}).json()["Metadata"]
    assert (one["ArrayJobId"], one["ArrayTaskId"]) == (array, 2)


def test_two_steps_are_served_with_their_own_cpu_seconds(cluster: Cluster) -> None:
    script = (
        f"srun python3 -c '{BUSY.format(seconds=1.5)}'\nsleep 1\n"
        f"srun python3 -c '{BUSY.format(seconds=3)}'\nsleep 1"
    )
    job = cluster.sbatch(script)
    cluster.finished(job)

    def steps() -> dict[str, float] | None:
        page = cluster.collector.get(f"/api/job/{job}", params={"raw": "true"}).json()
        found = {s["Step"]: s["CpuSeconds"] for s in page.get("Steps") or [] if s["CpuSeconds"] is not None}
        return found if {"0", "1"} <= set(found) else None

    cpu = wait_for(steps, 60, f"steps of job {job}")
    # each srun step's own cgroup, read until it went (the last read up to a tick before its end)
    assert 1.0 <= cpu["0"] <= 1.8, cpu
    assert 2.4 <= cpu["1"] <= 3.3, cpu


def test_missed_hooks_are_filled_in_by_the_reconciler(cluster: Cluster) -> None:
    hook_env = cluster.dir / "etc" / "jobpulse-hook.env"
    saved = hook_env.read_text()
    hook_env.write_text("JOBPULSE_AGENT=/nonexistent/jobpulse-agent\n")  # hooks run but reach nobody
    try:
        job = cluster.sbatch("sleep 1", "-J", "unhooked")
        meta = cluster.finished(job)["Metadata"]
    finally:
        hook_env.write_text(saved)
    assert (meta["UserName"], meta["Partition"], meta["JobName"], meta["State"]) == (
        "root",
        "compute",
        "unhooked",
        "COMPLETED",
    )


def test_parse_slurm_duration() -> None:
    assert parse_slurm_duration("00:03.092") == pytest.approx(3.092)
    assert parse_slurm_duration("01:02:03") == 3723
    assert parse_slurm_duration("1-00:00:01") == 86401


def test_het_job_shows_as_components_of_one_het_job_each_with_its_own_nodes_and_series(
    cluster: Cluster,
) -> None:
    """``sbatch A : B``: Slurm runs each component as a job of its own (its own id and cgroups
    ``job_<component id>``); the prolog gets ``SLURM_HET_JOB_ID`` (and no offset), squeue and sacct
    name them ``<het id>+<offset>`` (multinode.md; tests/fixtures/slurm/hetjob-hooks-env.log)."""
    busy = f"python3 -c '{BUSY.format(seconds=1.5)}'"
    out = cluster.run(
        "sbatch", "--parsable", "-o", "/dev/null", "-n1", ":", "-N2", "-n2",
        "--wrap", f"srun --het-group=0,1 {busy}\nsleep 1",
    )  # fmt: skip
    het = int(out.strip().split(";")[0])

    def components() -> list[dict[str, Any]] | None:
        rows = cluster.collector.get("/api/jobs", params={"HetJobId": het, "limit": 100}).json()["Jobs"]
        done = [j for j in rows if not j["IsRunning"] and j.get("HetJobOffset") is not None]
        return done if len(done) == 2 else None

    found = wait_for(components, 120, f"two components of het job {het}")
    assert sorted((j["HetJobOffset"], j["JobIdString"]) for j in found) == [(0, f"{het}+0"), (1, f"{het}+1")]
    by_offset = {j["HetJobOffset"]: j for j in found}
    assert by_offset[0]["Id"] == het  # component 0 runs under the het job's own id
    assert by_offset[1]["Id"] != het  # component 1 under a job id of its own
    nodes_of: dict[int, set[str]] = {}
    for offset, expected_nodes in ((0, 1), (1, 2)):
        doc = cluster.collector.get(f"/api/job/{het}+{offset}", params={"raw": "true"}).json()
        meta = doc["Metadata"]
        assert (meta["HetJobId"], meta["HetJobOffset"], meta["Id"]) == (het, offset, by_offset[offset]["Id"])
        assert meta["State"] == "COMPLETED" and meta["NumNodes"] == expected_nodes
        nodes = {n["Name"] for n in meta["Nodes"]}
        assert len(nodes) == expected_nodes
        # each component's series come from its own nodes only, and each node's task burned 1.5 CPU-s
        assert {n for m in doc["MetricData"] for n in m["Data"]} == nodes, (offset, nodes)
        for node in nodes:
            only = {**doc, "MetricData": [{**m, "Data": {node: m["Data"][node]}} for m in doc["MetricData"]]}
            assert 1.3 < raw_cpu_seconds(only) < 2.5, (offset, node, raw_cpu_seconds(only))
        nodes_of[offset] = nodes
    if cluster.accounting:  # Slurm's own view of the components and their nodes
        out = cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID,JobIDRaw,NodeList", "-j", str(het))
        rows = {line.split("|")[0]: line.split("|") for line in out.split()}
        assert set(rows) == {f"{het}+0", f"{het}+1"}
        assert int(rows[f"{het}+1"][1]) == by_offset[1]["Id"]
        assert rows[f"{het}+0"][2] in nodes_of[0]


def _sacct_jobs(cluster: Cluster, since: str) -> dict[str, tuple[str, int, int, str, str, str]]:
    """sacct's own list of the finished job allocations submitted since ``since``: JobID -> (state,
    CPUs, elapsed seconds, user, account, cluster). With an end time, as the backfill asks: without one,
    22.05's sacct leaves out the jobs cancelled before they started."""
    fields = "JobID,State,AllocCPUS,ElapsedRaw,User,Account,Cluster,Submit"
    until = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    out = cluster.run("sacct", "-n", "-X", "-P", "--allusers", "-S", since, "-E", until, "-o", fields)
    jobs = {}
    for line in out.splitlines():
        job, state, cpus, elapsed, user, account, name, submit = line.split("|")
        state = state.split(" ")[0]
        if submit >= since and state not in ("PENDING", "RUNNING", "REQUEUED", "SUSPENDED"):
            jobs[job] = (state, int(cpus), int(elapsed), user, account, name)
    return jobs


def _usage_rows(database: Path) -> dict[str, dict[str, Any]]:
    """The backfill's usage rows, read from its SQLite file as they are stored."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return {row["job"]: dict(row) for row in db.execute("SELECT * FROM usage_jobs")}


def test_backfill_from_the_real_sacct_stores_exactly_its_jobs_and_a_second_run_adds_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Issue 18: ``jobpulse-collector backfill-sacct`` as an admin runs it, against this cluster's sacct:
    ``--format auto`` reads ``sacct --json`` (22.05 has it), and ``--format parsable`` stores the very same
    rows for the same jobs (arrays, a het job, a 3-node job, one cancelled before it started)."""
    if not cluster.accounting:
        pytest.skip("the test cluster runs without slurmdbd: sacct has no jobs")
    completed = cluster.sbatch("sleep 1")
    failed = cluster.sbatch("exit 3")
    cancelled = cluster.sbatch("sleep 300")
    never_ran = cluster.sbatch("sleep 1", "--begin=now+3600")  # cancelled while pending
    three_nodes = cluster.sbatch("srun sleep 1", "-N", str(NODES))
    out = cluster.run("sbatch", "--parsable", "-o", "/dev/null", "--array=1-3", "--wrap", "sleep 1")
    array = int(out.strip().split(";")[0])
    out = cluster.run(
        "sbatch", "--parsable", "-o", "/dev/null", "-n1", ":", "-N2", "-n2", "--wrap", "srun --het-group=0,1 sleep 1"
    )  # fmt: skip
    het = int(out.strip().split(";")[0])
    running = f"{cancelled}|RUNNING"
    wait_for(
        lambda: running in cluster.run("sacct", "-n", "-X", "-P", "-o", "JobID,State").split(), 60, "start"
    )
    cluster.run("scancel", str(cancelled), str(never_ran))
    # every job of this cluster has ended (the other tests' too: sacct's list is then final)
    wait_for(lambda: not cluster.run("squeue", "-h", "-o", "%i").strip(), 120, "an empty queue")
    since = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d")  # sacct and Submit: local time
    mine = {str(completed), str(failed), str(cancelled), str(never_ran), str(three_nodes)}
    mine |= {*(f"{array}_{i}" for i in (1, 2, 3)), f"{het}+0", f"{het}+1"}

    def accounted() -> dict[str, tuple[str, int, int, str, str, str]] | None:
        jobs = _sacct_jobs(cluster, since)
        return jobs if mine <= set(jobs) else None

    try:
        expected = wait_for(accounted, 60, "sacct's records of the jobs")
    except AssertionError:
        said = cluster.run(
            "sacct", "-X", "-P", "--allusers", "-S", since, "-E", "now", "-o", "JobID,State,Submit,Start,End"
        )
        raise AssertionError(
            f"sacct lacks {sorted(mine - set(_sacct_jobs(cluster, since)))}:\n{said}"
        ) from None
    assert (expected[str(failed)][0], expected[str(cancelled)][0]) == ("FAILED", "CANCELLED")

    state = tmp_path / "backfill"
    env = {**os.environ, "SLURM_CONF": cluster.env["SLURM_CONF"]}

    def backfill(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        command = [
            str(ROOT / ".venv" / "bin" / "jobpulse-collector"), "backfill-sacct",
            "--config", str(tmp_path / "no-config.toml"), "--state-dir", str(state), "--since", since, *extra,
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done

    first = backfill(state)  # --format auto
    version = cluster.run("sacct", "--version").strip()  # Debian's "slurm-wlm 22.05.8"
    assert f"reading sacct --json (sacct says {version!r}; --json since 21.08)" in first.stderr, first.stderr
    assert f"{len(expected)} finished jobs, {len(expected)} new (sacct --json)" in first.stdout, first.stdout
    rows = _usage_rows(state / "jobpulse.db")
    stored = {
        job: (r["state"], r["cpus"], (r["end"] - r["start"]) if r["start"] else 0, r["user_name"], r["account"], r["cluster"])
        for job, r in rows.items()
    }  # fmt: skip
    assert stored == expected
    for r in rows.values():  # CPU-hours: the allocated CPUs for the elapsed time
        assert (r["source"], r["cpu_hours"]) == (
            "sacct",
            round(r["cpus"] * ((r["end"] - r["start"]) if r["start"] else 0) / 3600, 6),
        )
    assert (rows[str(three_nodes)]["nodes"], rows[f"{het}+1"]["nodes"]) == (NODES, 2)
    assert (rows[str(never_ran)]["start"], rows[str(never_ran)]["nodelist"]) == (None, "None assigned")

    # The same command again (today's week is not over, so sacct is asked again): nothing added or changed
    second = backfill(state)
    assert f"{len(expected)} finished jobs, 0 new" in second.stdout, second.stdout
    assert set(re.findall(r"(\d+) updated", second.stderr)) == {"0"}, second.stderr
    assert _usage_rows(state / "jobpulse.db") == rows

    # sacct --parsable2 of the same jobs: the same rows in a database of its own (but the time written),
    # and over the rows --json stored, nothing changed
    parsable = backfill(tmp_path / "parsable", "--format", "parsable")
    assert "reading sacct --parsable2 (asked for)" in parsable.stderr, parsable.stderr
    assert f"{len(expected)} finished jobs, {len(expected)} new (sacct --parsable2)" in parsable.stdout

    def unstamped(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {job: {k: v for k, v in r.items() if k != "updated"} for job, r in found.items()}

    assert unstamped(_usage_rows(tmp_path / "parsable" / "jobpulse.db")) == unstamped(rows)
    again = backfill(state, "--format", "parsable", "--restart")
    assert f"{len(expected)} finished jobs, 0 new (sacct --parsable2)" in again.stdout, again.stdout
    assert set(re.findall(r"(\d+) updated", again.stderr)) == {"0"}, again.stderr
    assert _usage_rows(state / "jobpulse.db") == rows
