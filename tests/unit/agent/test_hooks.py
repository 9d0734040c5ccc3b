"""prolog/epilog: what they read from slurmd's environment (real captures) and what they do when alone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jobpulse.agent import hooks, jobmeta, jobstate
from jobpulse.common import validate
from support import FIXTURES

SLURM = FIXTURES / "slurm"
# the unprivileged user cannot enter root's checkout, so it runs the system interpreter
SYSTEM_PYTHON = "/usr/bin/python3"


def captured_env(name: str, index: int = -1) -> dict[str, str]:
    """One environment block of a real prolog/epilog capture (`KEY=VALUE` lines after `=== ...`)."""
    blocks: list[dict[str, str]] = []
    in_env = False
    for line in (SLURM / name).read_text().splitlines():
        if line.startswith("=== "):
            blocks.append({})
            in_env = True
        elif line.startswith("--- "):
            in_env = False
        elif in_env and "=" in line:
            key, _, value = line.partition("=")
            blocks[-1][key] = value
    return blocks[index]


def hook(
    kind: str, state: Path, sock: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "jobpulse.agent.cli", kind, "--state-dir", str(state), "--socket", str(sock)],
        env={"PATH": os.environ["PATH"], "JOBPULSE_AGENT_CONFIG": os.environ["JOBPULSE_AGENT_CONFIG"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done, time.monotonic() - started


def test_prolog_meta_from_a_real_slurm_22_05_environment() -> None:
    event = hooks.build_event("prolog", captured_env("prolog-env.log"), now=1_795_404_625)
    assert event["type"] == "start"
    assert event["meta"] == {
        "job_id": "2",
        "source": "prolog",
        "cluster": "testcluster",
        "user": "root",
        "account": "root",
        "partition": "compute",
        "nodelist": "vm",  # Slurm 22.05: SLURM_NODELIST
        "uid": 0,
        "gid": 0,
        "num_nodes": 1,
        "cpus_on_node": 1,
        "start_time": 1_795_404_625,
        "state": "RUNNING",
    }


def test_epilog_meta_carries_the_exit_code() -> None:
    env = captured_env("epilog-env.log")
    event = hooks.build_event("epilog", env, now=1_795_404_631)
    assert event["type"] == "stop"
    assert (event["meta"]["exit_code"], event["meta"]["state"], event["meta"]["end_time"]) == (
        0,
        "COMPLETED",
        1_795_404_631,
    )
    assert hooks.exit_status({**env, "SLURM_JOB_EXIT_CODE2": "3:0", "SLURM_JOB_EXIT_CODE": "768"}) == (
        3,
        "FAILED",
    )
    assert hooks.exit_status({"SLURM_JOB_EXIT_CODE2": "0:15"}) == (143, "CANCELLED")
    assert hooks.exit_status({"SLURM_JOB_EXIT_CODE": "768"}) == (3, "FAILED")  # no EXIT_CODE2: a wait status
    assert hooks.exit_status({"SLURM_JOB_EXIT_CODE": "9"}) == (137, "CANCELLED")
    # the signal travels too, so the collector can show Slurm's "code:signal"
    assert event["meta"]["exit_signal"] == 0
    assert hooks.slurm_exit({"SLURM_JOB_EXIT_CODE2": "0:15"}) == (0, 15)
    assert hooks.slurm_exit({"SLURM_JOB_EXIT_CODE": "768"}) == (3, 0)
    assert hooks.slurm_exit({}) is None
    assert "exit_signal" not in hooks.build_event("epilog", {"SLURM_JOB_ID": "5"}, now=1)["meta"]


def test_het_job_components_carry_their_het_job_from_a_real_22_05_capture() -> None:
    """Each component's hooks get its own SLURM_JOB_ID and the het job's SLURM_HET_JOB_ID, no offset:
    component 0 runs under the het job's id (offset 0); another component's offset is not known here."""
    leader = captured_env("hetjob-hooks-env.log", 2)  # prolog of job 1 (1+0) on hh1
    other = captured_env("hetjob-hooks-env.log", 0)  # prolog of job 2 (1+1) on hh2
    assert "SLURM_HET_JOB_OFFSET" not in leader and "SLURM_HET_JOB_OFFSET" not in other
    meta = hooks.build_event("prolog", leader, now=1)["meta"]
    assert (meta["job_id"], meta["het_job_id"], meta["het_job_offset"]) == ("1", 1, 0)
    meta = hooks.build_event("prolog", other, now=1)["meta"]
    assert (meta["job_id"], meta["het_job_id"], meta["nodelist"]) == ("2", 1, "hh[2-3]")
    assert "het_job_offset" not in meta
    epilog = hooks.build_event("epilog", captured_env("hetjob-hooks-env.log", 3), now=2)["meta"]
    assert (epilog["job_id"], epilog["het_job_id"], epilog["state"]) == ("2", 1, "COMPLETED")
    # the older name alone (SLURM_PACK_JOB_ID) says the same; a bad value is left out with its reason
    older = {k: v for k, v in leader.items() if k != "SLURM_HET_JOB_ID"}
    assert hooks.build_event("prolog", older, now=1)["meta"]["het_job_id"] == 1
    dropped: list[str] = []
    bad = hooks.meta_from_env({**other, "SLURM_HET_JOB_ID": "1x"}, "prolog", dropped)
    assert "het_job_id" not in bad and any("SLURM_HET_JOB_ID" in d for d in dropped)
    # a job that is no het job says nothing of one
    assert "het_job_id" not in hooks.build_event("prolog", captured_env("prolog-env.log"), now=1)["meta"]
    # what the agent sends on: the component's het job, and an offset only where the hook knew it
    from jobpulse.agent.daemon import meta_from_dict

    wire = meta_from_dict(jobmeta.clean(hooks.build_event("prolog", other, now=1)["meta"])[0])
    assert wire.HasField("het_job_id") and wire.het_job_id == 1 and not wire.HasField("het_job_offset")
    wire = meta_from_dict(jobmeta.clean(hooks.build_event("prolog", leader, now=1)["meta"])[0])
    assert (wire.het_job_id, wire.HasField("het_job_offset"), wire.het_job_offset) == (1, True, 0)


def test_oom_killed_jobs_read_as_sacct_shows_them() -> None:
    """Slurm's "0:125" (SLURM_JOB_EXIT_CODE=253) is its OOM mark, not signal 125: real epilogs."""
    batch_child, whole_script, srun_task = (captured_env("oom-epilog-env.log", i) for i in range(3))
    for env in (batch_child, whole_script):
        assert env["SLURM_JOB_EXIT_CODE"] == "253"
        assert hooks.exit_status(env) == (0, "OUT_OF_MEMORY")
        assert hooks.exit_status({"SLURM_JOB_EXIT_CODE": "253"}) == (0, "OUT_OF_MEMORY")  # older slurmd
    # An OOM kill in an srun step shows only in the derived exit code: the job COMPLETED, as sacct says.
    assert srun_task["SLURM_JOB_DERIVED_EC"] == "253"
    assert hooks.exit_status(srun_task) == (0, "COMPLETED")
    event = hooks.build_event("epilog", whole_script, now=1_796_345_341)
    assert (event["meta"]["job_id"], event["meta"]["exit_code"], event["meta"]["state"]) == (
        "9",
        0,
        "OUT_OF_MEMORY",
    )
    assert event["meta"]["exit_signal"] == 125


def test_newer_slurm_names_gpus_and_sluid() -> None:
    env = {
        "SLURM_JOB_ID": "17",
        "SLURM_JOB_NODELIST": "gpu[01-02]",
        "SLURM_NODELIST": "ignored",
        "SLURM_JOB_CPUS_PER_NODE": "8(x2)",
        "SLURM_JOB_GPUS": "0,2",
        "CUDA_VISIBLE_DEVICES": "5",
        "SLURM_JOB_SLUID": "s1a2b3c4",
        "SLURM_JOB_QOS": "high",
    }
    meta = hooks.meta_from_env(env, "prolog")
    assert (meta["nodelist"], meta["cpus_on_node"], meta["gpus"], meta["sluid"], meta["qos"]) == (
        "gpu[01-02]",
        8,
        ["0", "2"],
        "s1a2b3c4",
        "high",
    )
    assert hooks.meta_from_env({"SLURM_JOB_ID": "3", "CUDA_VISIBLE_DEVICES": "1,3"}, "prolog")["gpus"] == [
        "1",
        "3",
    ]


def test_prolog_writes_job_state_for_the_sampler_and_epilog_removes_it(tmp_path: Path) -> None:
    env = {"SLURM_JOB_ID": "23", "SLURM_JOB_GPUS": "1", "SLURM_JOB_SLUID": "abc", "SLURM_JOB_USER": "alice"}
    assert hooks.run_hook("prolog", tmp_path / "none.sock", tmp_path, env) == "spooled"
    meta = jobstate.load_all(tmp_path)["23"]
    assert (meta["gpus"], meta["sluid"], meta["user"]) == (["1"], "abc", "alice")
    assert (tmp_path / "jobs" / "23.json").stat().st_mode & 0o077 == 0
    hooks.run_hook("epilog", tmp_path / "none.sock", tmp_path, env)
    assert "23" not in jobstate.load_all(tmp_path)


def test_hook_outside_slurm_exits_0_and_sends_nothing(tmp_path: Path) -> None:
    done, _ = hook("prolog", tmp_path, tmp_path / "agent.sock", {})
    assert done.returncode == 0
    # Without /dev/log the reason goes to <state_dir>/hooks.log (root-only): slurmd discards stderr.
    if not os.path.exists("/dev/log"):
        assert "not a Slurm job environment" in (tmp_path / "hooks.log").read_text()
        assert (tmp_path / "hooks.log").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "events").exists()
    bad_args, _ = hook("epilog", tmp_path, tmp_path / "agent.sock", {"SLURM_JOB_ID": "5"})
    assert bad_args.returncode == 0
    wrong = subprocess.run(
        [sys.executable, "-m", "jobpulse.agent.cli", "prolog", "--bogus"], capture_output=True, check=False
    )
    assert wrong.returncode == 0


def test_agent_down_hook_spools_fast(tmp_path: Path) -> None:
    env = captured_env("prolog-env.log")
    done, took = hook("prolog", tmp_path, tmp_path / "agent.sock", env)
    assert done.returncode == 0 and took < 2.0, (took, done.stderr)
    [spooled] = list((tmp_path / "events").glob("*.json"))
    assert json.loads(spooled.read_text())["meta"]["job_id"] == "2"
    assert spooled.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "events").stat().st_mode & 0o777 == 0o700


@pytest.mark.slow  # waits out the hook's 1 s socket timeout: the whole suite runs it, not the fast tier
def test_hung_agent_socket_hook_spools_within_2s(tmp_path: Path) -> None:
    sock_path = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(sock_path))
        listener.listen(8)  # accepts (the kernel completes the connect) and never answers
        done, took = hook("epilog", tmp_path, sock_path, captured_env("epilog-env.log"))
    assert done.returncode == 0 and took < 2.0, (took, done.stderr)
    [spooled] = list((tmp_path / "events").glob("*.json"))
    assert json.loads(spooled.read_text())["type"] == "stop"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
@pytest.mark.skipif(
    not os.path.exists(SYSTEM_PYTHON), reason="no /usr/bin/python3 for the unprivileged probe"
)
def test_non_root_cannot_write_the_events_dir(tmp_path: Path) -> None:
    state = Path("/tmp") / f"jobpulse-hooks-{os.getpid()}"
    state.mkdir(mode=0o755)
    try:
        hooks.run_hook("prolog", state / "agent.sock", state, {"SLURM_JOB_ID": "31"})
        probe = (
            "import sys\n"
            "try:\n"
            f"    open('{state}/events/forged.json', 'w').write('{{}}')\n"
            "except PermissionError:\n"
            "    sys.exit(13)\n"
            "sys.exit(0)\n"
        )
        as_nobody = subprocess.run([SYSTEM_PYTHON, "-c", probe], preexec_fn=_become_nobody, check=False)
        assert as_nobody.returncode == 13
        assert not (state / "events" / "forged.json").exists()
    finally:
        subprocess.run(["rm", "-rf", str(state)], check=True)


def _become_nobody() -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_send_budget_leaves_room_for_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow start (loaded node) shrinks the agent's share, so the event is spooled before timeout(1) kills us."""
    assert 0 < hooks.seconds_since_exec() < 3600
    monkeypatch.setattr(hooks, "seconds_since_exec", lambda: 0.3)
    assert hooks.send_budget() == pytest.approx(hooks.DEADLINE - 0.3)
    monkeypatch.setattr(hooks, "seconds_since_exec", lambda: 5.0)
    assert hooks.send_budget() == hooks.MIN_SEND


@pytest.mark.parametrize(
    "job_id", ["²", "٣", "12345678901234567890", "4294967296", " 7", "1_2", "0", "-1", ""]
)
def test_d2_job_ids_str_isdigit_let_through_are_refused(job_id: str) -> None:
    with pytest.raises(validate.InvalidField, match="SLURM_JOB_ID"):
        hooks.build_event("prolog", {"SLURM_JOB_ID": job_id})


def test_d3_out_of_range_numbers_are_left_out_with_a_reason() -> None:
    env = {
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_UID": str(2**70),
        "SLURM_JOB_GID": "٣",
        "SLURM_JOB_NUM_NODES": "-1",
        "SLURM_JOB_CPUS_PER_NODE": "99999999999",
        "SLURM_JOB_USER": "../root",
        "SLURM_JOB_NAME": "train\x1b[2J",
        "SLURM_JOB_GPUS": "0,1",
        "SLURM_JOB_NODELIST": "gpu[01-02]",
        "SLURM_JOB_EXIT_CODE2": "²:9",
    }
    dropped: list[str] = []
    event = hooks.build_event("epilog", env, now=100, dropped=dropped)
    assert event["meta"] == {
        "job_id": "42",
        "source": "epilog",
        "gpus": ["0", "1"],
        "nodelist": "gpu[01-02]",
        "end_time": 100,
        "exit_code": 137,
        "exit_signal": 9,
        "state": "CANCELLED",
    }
    named = sorted(reason.split(":")[0] for reason in dropped)
    assert named == sorted(
        [
            "SLURM_JOB_UID",
            "SLURM_JOB_GID",
            "SLURM_JOB_NUM_NODES",
            "SLURM_JOB_CPUS_PER_NODE",
            "SLURM_JOB_USER",
            "SLURM_JOB_NAME",
        ]
    )
