"""Property-based (hypothesis): no hook environment and no agent-socket request stops a node's data.

Against one real agent (sampling the static cgroup fixture) and a real collector: random Slurm
environments go through the hook's own code path (``hooks.run_hook``, which checks the environment and
hands the event to the agent's socket), random JSON and raw bytes go to the socket. The properties:
the hook never raises and never has to spool (whatever it sends, the agent takes); the agent answers
every request with ``{"ok": true|false, ...}``, never crashes, and everything it made is stored by the
collector, nothing refused (the checks of hook, agent and collector agree); a normal prolog afterwards
is handled like any other.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from delivery import agent, produced, stored
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jobpulse.agent import events, hooks
from jobpulse.common import validate
from support import run_hook, start_collector, stop, wait_for
from test_agent_poison import job_row, slurm_env

NODE = "fuzz1"
# per property; the whole test takes ~15 s on the 2-core test machine (more: JOBPULSE_FUZZ_EXAMPLES=2000)
EXAMPLES = int(os.environ.get("JOBPULSE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.too_slow],
)

SLURM_KEYS = [
    "SLURM_JOB_ID", "SLURM_JOBID", "SLURM_CLUSTER_NAME", "SLURM_JOB_USER", "SLURM_JOB_ACCOUNT",
    "SLURM_JOB_PARTITION", "SLURM_JOB_QOS", "SLURM_JOB_NAME", "SLURM_JOB_SLUID", "SLURM_JOB_UID",
    "SLURM_JOB_GID", "SLURM_JOB_NUM_NODES", "SLURM_JOB_CPUS_PER_NODE", "SLURM_JOB_GPUS",
    "CUDA_VISIBLE_DEVICES", "SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOB_EXIT_CODE2",
    "SLURM_JOB_EXIT_CODE",
]  # fmt: skip
TRICKY = [
    "", "0", "1", "-1", "4294967295", "4294967296", str(2**63), str(2**70), "99999999999", "²", "٣",
    "\uff11\uff12", " 7", "7 ", "1_2", "0x10", "+5", "1e3", "2(x3),1", "8(x2)", "0,2", "NoDevFiles",
    "GPU-0f1e", "MIG-GPU-aa/1/0", "../etc", "a\nb", "\u202eevil", "node[001-004]", "0:15", "3:0",
]  # fmt: skip
# Environment values cannot hold NUL; anything else can be there.
env_text = st.text(st.characters(blacklist_characters="\x00"), max_size=40)
digits = st.text(st.characters(whitelist_categories=["Nd", "No"]), min_size=1, max_size=24)
numbers = st.integers(min_value=-(2**80), max_value=2**80).map(str)
env_value = st.one_of(st.sampled_from(TRICKY), env_text, digits, numbers)
environments = st.fixed_dictionaries(
    {"SLURM_JOB_ID": st.one_of(st.integers(1, 2**32 - 1).map(str), env_value)},
    optional=dict.fromkeys(SLURM_KEYS[1:], env_value),
)

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**100), max_value=2**100),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(TRICKY),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
META_KEYS = ["cluster", "user", "group", "account", "partition", "qos", "job_name", "nodelist", "sluid",
             "gpus", "uid", "gid", "num_nodes", "cpus_on_node", "num_tasks", "exit_code", "state",
             "start_time", "end_time", "mem_requested_bytes", "source", "unknown_key"]  # fmt: skip
metas = st.fixed_dictionaries(
    {"job_id": st.one_of(st.integers(1, 2**32 - 1), st.integers(1, 2**32 - 1).map(str), json_value)},
    optional=dict.fromkeys(META_KEYS, json_value),
)


def _would_track(value: Any) -> bool:
    """A valid pid makes the agent follow that process tree (pid 1: the whole machine): left out."""
    try:
        validate.integer(value, "pid", 1, 2**22)
    except validate.InvalidField:
        return False
    return True


requests = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from(["start", "stop"]), json_value),
        "meta": st.one_of(metas, json_value),
        "pid": json_value.filter(lambda v: not _would_track(v)),
        "cgroup": json_value,
        "rusage": st.dictionaries(st.sampled_from(["utime", "stime", "maxrss_kb"]), json_value),
    },
)
raw_lines = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"") + b"\n"),
    st.integers(17, 30_000).map(lambda n: b"[" * n + b"]" * n + b"\n"),
    st.integers(1, 2000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n + b"\n"),
)


def _raw(sock_path: Path, data: bytes) -> dict[str, Any]:
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
    assert isinstance(answer, dict), reply
    return answer


def test_no_hook_environment_or_socket_request_stops_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = start_collector(tmp_path / "collector")
    state = tmp_path / "agent"
    proc = agent(state, collector.grpc_target, NODE, tick=0.5)
    sock = state / "agent.sock"
    scratch = tmp_path / "hook-state"  # the hook's job state files and spool (it must never spool)
    monkeypatch.setattr(hooks, "send_budget", lambda: 5.0)  # a loaded test machine is not a timeout
    umask = os.umask(0o022)
    os.umask(umask)
    try:

        @FUZZ
        @given(env=environments, kind=st.sampled_from(["prolog", "epilog"]))
        def hook_environments(env: dict[str, str], kind: str) -> None:
            try:
                outcome = hooks.run_hook(kind, sock, scratch, env)
            finally:
                os.umask(umask)  # run_hook sets root's 077 for the process
            assert outcome in ("sent", "skipped"), (outcome, env)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            assert proc.poll() is None

        @FUZZ
        @given(request=requests)
        # always tried as well: a well-formed start and stop (random ones are mostly refusals)
        @example(request={"type": "start", "meta": {"job_id": "4242", "user": "carol", "uid": 1001}})
        @example(request={"type": "stop", "meta": {"job_id": 4242, "exit_code": 0}})
        def socket_requests(request: dict[str, Any]) -> None:
            answer = events.send(sock, request, timeout=10)
            assert isinstance(answer.get("ok"), bool), answer
            assert answer["ok"] or answer.get("error"), answer
            outcomes[f"socket ok={answer['ok']}"] = outcomes.get(f"socket ok={answer['ok']}", 0) + 1
            assert proc.poll() is None

        @FUZZ
        @given(line=raw_lines)
        def socket_bytes(line: bytes) -> None:
            answer = _raw(sock, line)
            assert isinstance(answer.get("ok"), bool), answer
            assert proc.poll() is None

        outcomes: dict[str, int] = {}
        hook_environments()
        socket_requests()
        socket_bytes()
        # both kinds of answer occurred: the strategies reach the agent's handling, not only its refusals
        assert outcomes.get("sent") and outcomes.get("socket ok=True") and outcomes.get("socket ok=False"), (
            outcomes
        )
        assert not list((scratch / "events").glob("*.json")), "the agent refused what the hook checked"
        # Still delivering: a normal job is handled, and everything the agent made is stored, none refused.
        run_hook("prolog", state, slurm_env("88", SLURM_JOB_USER="bob"))
        wait_for(lambda: (job_row(collector, 88) or {}).get("user_name") == "bob", 20, "a normal job's start")
        made = produced(state / "spool").seqs
        wait_for(lambda: stored(collector, NODE)[2] >= made[-1], 30, "everything the agent made to be stored")
        assert proc.poll() is None
        assert not (state / "spool" / "rejected").exists(), "the collector refused what the agent checked"
        assert not (state / "events" / "rejected").exists()
        assert "Traceback" not in (state / "agent.log").read_text()
    finally:
        stop(proc)
        stop(collector.proc)
