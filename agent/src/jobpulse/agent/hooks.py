"""`jobpulse-agent prolog|epilog`: turn slurmd's Prolog/Epilog environment into a job event.

slurmd runs these as root for every job, and a prolog that fails or hangs
drains the node. So: read only the environment (never call a Slurm command),
give the agent at most ``budget`` seconds, spool the event to the events
directory when the agent does not answer, log trouble to syslog (or, without
one, to ``<state_dir>/hooks.log``), and always exit 0. Every value read from the
environment is checked (``jobmeta.clean``): a bad job id skips the event, any other
bad field is left out with a logged reason, so no prolog can poison the agent. The imports stay light (no grpc, psutil or asyncio): the hook's cost
is paid on every job start and end.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobpulse.agent import events, jobmeta, jobstate
from jobpulse.common import validate

log = logging.getLogger("jobpulse.agent.hooks")

# The hook must be done (event sent or spooled) well before the packaged script's
# `timeout 1.8` kills it: the agent gets what is left of DEADLINE after Python's start-up
# (slow on a loaded node), but at least MIN_SEND.
DEADLINE = 1.4
MIN_SEND = 0.1
_CPUS_ITEM = re.compile(r"([0-9]+)(?:\(x[0-9]+\))?\Z")


HOOK_LOG = "hooks.log"
HOOK_LOG_MAX_BYTES = 1024 * 1024  # then it is renamed to hooks.log.1 (one older file is kept)


class BoundedFileHandler(logging.Handler):
    """Appends to a root-only file (0600, never through a symlink), rotated once at ``max_bytes``.

    Opened per record: a hook logs a line or two, and concurrent hooks (many jobs starting at once)
    then append whole lines without sharing a buffer.
    """

    def __init__(self, path: Path, max_bytes: int = HOOK_LOG_MAX_BYTES) -> None:
        super().__init__()
        self.path = path
        self.max_bytes = max_bytes

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(self.path, flags, 0o600)

    def check(self) -> None:
        """Raise OSError when the file cannot be written (the caller then logs to stderr)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(self._open())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            fd = self._open()
            try:
                if os.fstat(fd).st_size + len(line) > self.max_bytes:
                    with contextlib.suppress(FileNotFoundError):  # another hook rotated it first
                        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                    os.close(fd)
                    fd = self._open()
                os.write(fd, line)
            finally:
                os.close(fd)
        except Exception:
            self.handleError(record)


def setup_logging(state_dir: Path | None = None) -> None:
    """syslog (journal) when /dev/log exists, else ``<state_dir>/hooks.log``: slurmd discards a hook's
    stdout and stderr (and the packaged scripts keep stderr only for what logging cannot catch).
    stderr too when it is a terminal (an admin trying the hook) or when neither works."""
    root = logging.getLogger()
    root.handlers.clear()
    handlers: list[logging.Handler] = []
    if os.path.exists("/dev/log"):
        try:
            syslog = logging.handlers.SysLogHandler(address="/dev/log")
            syslog.setFormatter(logging.Formatter("jobpulse-hook[%(process)d]: %(levelname)s %(message)s"))
            handlers.append(syslog)
        except OSError:
            pass
    if not handlers and state_dir is not None:
        file = BoundedFileHandler(state_dir / HOOK_LOG)
        try:
            old = os.umask(0o077)
            try:
                file.check()
            finally:
                os.umask(old)
            file.setFormatter(
                logging.Formatter("%(asctime)s jobpulse-hook[%(process)d]: %(levelname)s %(message)s")
            )
            handlers.append(file)
        except OSError:
            pass
    if not handlers or sys.stderr.isatty():
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter("jobpulse-hook: %(levelname)s %(message)s"))
        handlers.append(stderr)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def seconds_since_exec() -> float:
    """How long this process has run (start-up included), from /proc; 0 when unknown."""
    try:
        with open("/proc/self/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, in clock ticks
        return max(0.0, uptime - started)
    except (OSError, ValueError, IndexError):
        return 0.0


def send_budget() -> float:
    return max(MIN_SEND, DEADLINE - seconds_since_exec())


def cpus_on_node(value: str) -> str:
    """First node's count from SLURM_JOB_CPUS_PER_NODE ("4", "2(x3),1"), as written; "" when absent."""
    first = value.split(",")[0].strip()
    match = _CPUS_ITEM.match(first)
    return match.group(1) if match else first


def gpus(env: Mapping[str, str]) -> list[str]:
    """GPUs given to the job on this node: SLURM_JOB_GPUS, else CUDA_VISIBLE_DEVICES."""
    raw = env.get("SLURM_JOB_GPUS") or env.get("CUDA_VISIBLE_DEVICES") or ""
    return [g.strip() for g in raw.split(",") if g.strip() and g.strip() != "NoDevFiles"]


# JobMeta field -> the environment variable it comes from (the reasons of dropped fields name the latter).
_ENV_NAMES = {
    "job_id": "SLURM_JOB_ID",
    "cluster": "SLURM_CLUSTER_NAME",
    "user": "SLURM_JOB_USER",
    "account": "SLURM_JOB_ACCOUNT",
    "partition": "SLURM_JOB_PARTITION",
    "qos": "SLURM_JOB_QOS",
    "job_name": "SLURM_JOB_NAME",
    "sluid": "SLURM_JOB_SLUID",
    "uid": "SLURM_JOB_UID",
    "gid": "SLURM_JOB_GID",
    "num_nodes": "SLURM_JOB_NUM_NODES",
    "cpus_on_node": "SLURM_JOB_CPUS_PER_NODE",
    "gpus": "SLURM_JOB_GPUS",
    "nodelist": "SLURM_JOB_NODELIST",
    "het_job_id": "SLURM_HET_JOB_ID",
}


def meta_from_env(env: Mapping[str, str], source: str, dropped: list[str] | None = None) -> dict[str, Any]:
    """JobMeta fields (proto names) from a Slurm prolog/epilog environment; absent ones are left out.

    Every value is checked (``jobmeta.clean``): a field that is not what Slurm would write (a uid of
    2**70, ``SLURM_JOB_NUM_NODES=-1``) is left out, and its reason appended to ``dropped``.

    Raises:
        InvalidField: SLURM_JOB_ID is missing or not a Slurm job number (ASCII digits, 32-bit).
    """
    raw: dict[str, Any] = {key: env.get(name) for key, name in _ENV_NAMES.items()}
    raw["job_id"] = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID") or ""
    # Slurm 22.05 names it SLURM_NODELIST in prolog/epilog; later releases SLURM_JOB_NODELIST.
    raw["nodelist"] = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    raw["cpus_on_node"] = cpus_on_node(env.get("SLURM_JOB_CPUS_PER_NODE", ""))
    raw["gpus"] = gpus(env) or None
    # A het job's component runs as a job of its own (SLURM_JOB_ID, cgroup job_<id>); slurmd also gives
    # the het job's id (SLURM_PACK_JOB_ID is its older name) but no offset (tests/fixtures/slurm/
    # hetjob-hooks-env.log). Component 0 runs under the het job's own id, so its offset is known; the
    # others' comes from squeue/sacct (the collector's reconciler).
    raw["het_job_id"] = env.get("SLURM_HET_JOB_ID") or env.get("SLURM_PACK_JOB_ID")
    meta, problems = jobmeta.clean(raw, _ENV_NAMES)
    if "het_job_id" in meta and str(meta["het_job_id"]) == meta["job_id"]:
        meta["het_job_offset"] = 0
    meta["source"] = source
    if meta.get("cpus_on_node") == 0:
        del meta["cpus_on_node"]  # unknown, not none
    if dropped is not None:
        dropped.extend(problems)
    return meta


def _exit_number(value: str, high: int) -> int | None:
    try:
        return validate.integer(value, "exit code", 0, high)
    except validate.InvalidField:
        return None


# Slurm marks an OOM-killed job "0:125" (wait status 253): 125 is Slurm's OOM mark, not a signal.
SLURM_OOM_MARK = 125


def slurm_exit(env: Mapping[str, str]) -> tuple[int, int] | None:
    """Slurm's "code:signal" of the epilog (SLURM_JOB_EXIT_CODE2, else the wait status in
    SLURM_JOB_EXIT_CODE); None when slurmd gave neither."""
    pair = env.get("SLURM_JOB_EXIT_CODE2", "")
    if ":" in pair:
        left, _, right = pair.partition(":")
        return _exit_number(left, 255) or 0, _exit_number(right, 127) or 0
    raw = _exit_number(env.get("SLURM_JOB_EXIT_CODE", ""), validate.INT32_MAX)
    if raw is None:
        return None
    return (raw >> 8) & 0xFF, raw & 0x7F


def exit_status(env: Mapping[str, str]) -> tuple[int, str]:
    """(exit code, state) from the epilog's SLURM_JOB_EXIT_CODE2 ("code:signal") or EXIT_CODE (wait status).

    The number is the one sacct's "code:signal" stands for: the code ("3:0" is 3), or 128 + the signal
    ("0:15" is 143, as a shell's ``$?``). Slurm's OOM mark ("0:125", also when the batch script exited 0
    after a child was OOM-killed) is no signal: the code, and the state OUT_OF_MEMORY, as sacct says.
    An OOM kill in an srun step only sets SLURM_JOB_DERIVED_EC; the job stays COMPLETED, as in sacct.
    """
    code, sig = slurm_exit(env) or (0, 0)
    if sig == SLURM_OOM_MARK:
        return code, "OUT_OF_MEMORY"
    if sig:
        # scancel and time limits end a job with SIGTERM/SIGKILL; the reconciler refines
        # the state from sacct where accounting exists.
        state = "CANCELLED" if sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGINT) else "FAILED"
        return 128 + sig, state
    return code, ("COMPLETED" if code == 0 else "FAILED")


def build_event(
    kind: str, env: Mapping[str, str], now: float | None = None, dropped: list[str] | None = None
) -> dict[str, Any]:
    meta = meta_from_env(env, kind, dropped)
    stamp = int(now if now is not None else time.time())
    if kind == "prolog":
        meta["start_time"] = stamp
        meta["state"] = "RUNNING"
        return {"type": "start", "meta": meta}
    meta["end_time"] = stamp
    meta["exit_code"], meta["state"] = exit_status(env)
    pair = slurm_exit(env)
    if pair is not None:
        meta["exit_signal"] = pair[1]  # with exit_code, Slurm's "code:signal"
    return {"type": "stop", "meta": meta}


def run_hook(kind: str, socket_path: Path, state_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """Deliver the event; returns what happened ('sent', 'spooled', 'lost', 'skipped'). Never raises."""
    started = time.monotonic()
    os.umask(0o077)  # job state and spooled events are root's alone
    env = os.environ if env is None else env
    dropped: list[str] = []
    try:
        event = build_event(kind, env, dropped=dropped)
    except Exception as exc:
        log.error("%s: not a Slurm job environment (%s); nothing sent", kind, exc)
        return "skipped"
    job_id = event["meta"]["job_id"]
    for reason in dropped:
        log.error("%s job %s: ignoring %s", kind, job_id, reason)
    if kind == "prolog":
        try:
            # The sampler reads this for GPU attribution and SLUID mapping, even across agent restarts.
            jobstate.write(state_dir, event["meta"])
        except OSError as exc:
            log.error("prolog job %s: cannot write job state under %s: %s", job_id, state_dir, exc)
    outcome = "lost"
    try:
        outcome = events.deliver(socket_path, state_dir / "events", event, timeout=send_budget())
    except Exception:
        log.exception("%s job %s: delivering the event failed", kind, job_id)
    if kind == "epilog":
        try:
            jobstate.remove(state_dir, job_id)
        except OSError as exc:
            log.warning("epilog job %s: cannot remove job state: %s", job_id, exc)
    level = logging.DEBUG if outcome == "sent" else logging.WARNING
    log.log(level, "%s job %s: event %s in %.3fs", kind, job_id, outcome, time.monotonic() - started)
    return outcome
