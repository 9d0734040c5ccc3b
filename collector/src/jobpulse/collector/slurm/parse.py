"""Slurm's JSON output (`squeue --json`, `sacct --json`) turned into one job shape.

Slurm 22.05 (openapi v0.0.38) prints plain numbers and strings; 23.02 and
later wrap numbers as ``{"set": bool, "infinite": bool, "number": n}`` and
states as lists (``["RUNNING"]``). Both are accepted everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

_MEM_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def number(value: Any) -> int | None:
    """A Slurm number: plain, or {set, infinite, number}; None when unset or infinite."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite", False):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def state(value: Any) -> str:
    """A job state: "RUNNING", ["RUNNING"], or {"current": ...} (sacct)."""
    if isinstance(value, dict):
        value = value.get("current")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").split(" ")[0].upper()


@dataclass
class SlurmJob:
    """What jobpulse keeps of a job, whichever tool reported it."""

    job_id: int
    cluster: str = ""
    user: str = ""
    uid: int | None = None
    group: str = ""
    gid: int | None = None
    account: str = ""
    partition: str = ""
    qos: str = ""
    name: str = ""
    nodelist: str = ""
    num_nodes: int | None = None
    cpus: int | None = None
    tasks: int | None = None
    mem_requested_bytes: int | None = None
    start: int | None = None
    end: int | None = None
    state: str = ""
    exit_code: int | None = None  # JobMon's one number: the code, or 128 + the signal (exit_code_of)
    exit_signal: int | None = None  # with the code, Slurm's "code:signal"; None: not known
    total_cpu_seconds: float | None = None  # sacct's TotalCPU: the sum over the job's steps
    array_job_id: int | None = None  # with array_task_id: this job is task N of that array
    array_task_id: int | None = None
    het_job_id: int | None = None  # with het_job_offset: component N of that het job
    het_job_offset: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state in ("RUNNING", "COMPLETING", "SUSPENDED", "CONFIGURING")

    @property
    def ended(self) -> bool:
        return bool(self.state) and not self.running and self.state not in ("PENDING", "REQUEUED")


# Slurm reports an OOM-killed job as "0:125" (wait status 253): 125 marks the OOM, it is no signal.
SLURM_OOM_MARK = 125


def exit_code_of(code: int | None, sig: int | None) -> int | None:
    """Slurm's "code:signal" as one number: the code, or 128 + the signal (a shell's $?); Slurm's OOM
    mark (signal 125) is not a signal, so an OOM job's number is its code (the state says OUT_OF_MEMORY)."""
    if sig and sig != SLURM_OOM_MARK:
        return 128 + sig
    return code


def wait_status(raw: int) -> tuple[int, int]:
    """Slurm's (code, signal) of a wait status as Slurm hands it on: squeue 22.05's ``exit_code``, and
    ``SLURM_JOB_EXIT_CODE`` in the epilogs (768 is exit 3, 15 SIGTERM, 253 Slurm's OOM mark 0:125)."""
    return (raw >> 8) & 0xFF, raw & 0x7F


def _exit_pair(value: Any) -> tuple[int, int] | None:
    """Slurm's (code, signal). squeue: a plain wait status number; sacct: {status, return_code, signal}
    with the signal as {"id"} (23.02+) or {"signal_id"} (22.05)."""
    if isinstance(value, dict) and ("return_code" in value or "status" in value):
        signal = value.get("signal")
        sig = None
        if isinstance(signal, dict):
            sig = number(signal.get("id", signal.get("signal_id")))
        return number(value.get("return_code")) or 0, sig or 0
    raw = number(value)
    if raw is None:
        return None
    # squeue 22.05 reports the raw wait status: exit code << 8 | signal (768 = exit 3, 15 = SIGTERM)
    return wait_status(raw)


class _Exit(TypedDict):
    exit_code: int | None
    exit_signal: int | None


def _exit_fields(pair: tuple[int, int] | None) -> _Exit:
    if pair is None:
        return {"exit_code": None, "exit_signal": None}
    return {"exit_code": exit_code_of(*pair), "exit_signal": pair[1]}


def _tres_count(tres: Any, kind: str) -> int | None:
    for item in tres or []:
        if isinstance(item, dict) and item.get("type") == kind:
            return number(item.get("count"))
    return None


def _positive(value: int | None) -> int | None:
    return value if value else None


class _ArrayHet(TypedDict):
    array_job_id: int | None
    array_task_id: int | None
    het_job_id: int | None
    het_job_offset: int | None


def _array_het(array_job: Any, array_task: Any, het_job: Any, het_offset: Any) -> _ArrayHet:
    """Array and het identity; Slurm prints 0 for "not an array / het job", so 0 means unset."""
    array_id = _positive(number(array_job))
    het_id = _positive(number(het_job))
    return {
        "array_job_id": array_id,
        "array_task_id": number(array_task) if array_id else None,
        "het_job_id": het_id,
        "het_job_offset": (number(het_offset) or 0) if het_id else None,
    }


def from_squeue(job: dict[str, Any]) -> SlurmJob:
    mem_node = number(job.get("memory_per_node"))
    mem_cpu = number(job.get("memory_per_cpu"))
    cpus = number(job.get("cpus"))
    mem = mem_node if mem_node else (mem_cpu * cpus if mem_cpu and cpus else None)
    return SlurmJob(
        job_id=int(number(job.get("job_id")) or 0),
        cluster=str(job.get("cluster") or ""),
        user=str(job.get("user_name") or ""),
        uid=number(job.get("user_id")),
        group=str(job.get("group_name") or ""),
        gid=number(job.get("group_id")),
        account=str(job.get("account") or ""),
        partition=str(job.get("partition") or ""),
        qos=str(job.get("qos") or ""),
        name=str(job.get("name") or ""),
        nodelist=str(job.get("nodes") or ""),
        num_nodes=_positive(number(job.get("node_count"))),
        cpus=_positive(cpus),
        tasks=_positive(number(job.get("tasks"))),
        mem_requested_bytes=mem * (1 << 20) if mem else None,
        start=_positive(number(job.get("start_time"))),
        end=_positive(number(job.get("end_time"))),
        state=state(job.get("job_state")),
        **_exit_fields(_exit_pair(job.get("exit_code"))),
        **_array_het(
            job.get("array_job_id"),
            job.get("array_task_id"),
            job.get("het_job_id"),
            job.get("het_job_offset"),
        ),
    )


def _sacct_tasks(job: dict[str, Any]) -> int | None:
    """The job's task count from sacct (22.05's job record has none): its largest step's, as the extern
    step has one task per node and an srun step one per task (``scontrol``'s NumTasks for these jobs)."""
    counts = [
        number((step.get("tasks") or {}).get("count"))
        for step in job.get("steps") or []
        if isinstance(step, dict) and isinstance(step.get("tasks"), dict)
    ]
    return _positive(max((c for c in counts if c), default=None))


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in job.get("steps") or [] if isinstance(step, dict)]


def _step_id(step: dict[str, Any]) -> str:
    ident = step.get("step")
    if isinstance(ident, dict):
        return str(ident.get("id", ident.get("name", "")))
    return str(ident or "")


def _sacct_exit(job: dict[str, Any]) -> tuple[int, int] | None:
    """The job's "code:signal". A cancelled (or timed out) job's own record says 0:0 in 22.05, its batch
    step the signal that ended it (0:15): sacct's line for the batch step, taken when the job's says 0:0."""
    pair = _exit_pair(job.get("exit_code"))
    if pair and pair != (0, 0):
        return pair
    for step in _steps(job):
        if _step_id(step) == "batch":
            step_pair = _exit_pair(step.get("exit_code"))
            if step_pair and step_pair[1]:
                return step_pair
    return pair


def _seconds(value: Any) -> float | None:
    """{seconds, microseconds} as sacct --json prints durations (22.05's microseconds may pass 10**6)."""
    if not isinstance(value, dict):
        return None
    whole, micro = number(value.get("seconds")), number(value.get("microseconds"))
    if whole is None and micro is None:
        return None
    return (whole or 0) + (micro or 0) / 1e6


def _sacct_total_cpu(job: dict[str, Any]) -> float | None:
    """sacct's TotalCPU of the job: the sum of its steps' (22.05's job record holds 0 there); None
    without steps (``sacct -X``)."""
    totals = [_seconds((step.get("time") or {}).get("total")) for step in _steps(job)]
    known = [t for t in totals if t is not None]
    if known:
        return sum(known)
    return _seconds((job.get("time") or {}).get("total")) or None


def from_sacct(job: dict[str, Any]) -> SlurmJob:
    times = job.get("time") or {}
    tres = (job.get("tres") or {}).get("allocated") or (job.get("tres") or {}).get("requested")
    mem_mb = _tres_count(tres, "mem")
    association = job.get("association") or {}
    array: dict[str, Any] = job["array"] if isinstance(job.get("array"), dict) else {}
    het: dict[str, Any] = job["het"] if isinstance(job.get("het"), dict) else {}
    return SlurmJob(
        job_id=int(number(job.get("job_id")) or 0),
        cluster=str(job.get("cluster") or association.get("cluster") or ""),
        user=str(job.get("user") or association.get("user") or ""),
        group=str(job.get("group") or ""),
        account=str(job.get("account") or ""),
        partition=str(job.get("partition") or ""),
        qos=str(job.get("qos") or ""),
        name=str(job.get("name") or ""),
        nodelist=str(job.get("nodes") or ""),
        num_nodes=_positive(number(job.get("allocation_nodes")) or _tres_count(tres, "node")),
        cpus=_positive(_tres_count(tres, "cpu")),
        tasks=_sacct_tasks(job),
        mem_requested_bytes=mem_mb * (1 << 20) if mem_mb else None,
        start=_positive(number(times.get("start"))),
        end=_positive(number(times.get("end"))),
        state=state(job.get("state")),
        **_exit_fields(_sacct_exit(job)),
        total_cpu_seconds=_sacct_total_cpu(job),
        **_array_het(array.get("job_id"), array.get("task_id"), het.get("job_id"), het.get("job_offset")),
    )


def jobs(doc: dict[str, Any], parse: str) -> list[SlurmJob]:
    """Every job of a `squeue --json` (parse="squeue") or `sacct --json` (parse="sacct") document."""
    convert = from_squeue if parse == "squeue" else from_sacct
    result = []
    for item in doc.get("jobs") or []:
        if isinstance(item, dict):
            job = convert(item)
            if job.job_id:
                result.append(job)
    return result


_SCONTROL_PAIR = re.compile(r"(\S+?)=(\S*)")


def from_scontrol(text: str) -> SlurmJob | None:
    """`scontrol show job ID` (22.05 has no --json): Key=Value pairs."""
    pairs = dict(_SCONTROL_PAIR.findall(text))
    job_id = number(pairs.get("JobId"))
    if not job_id:
        return None

    def idname(value: str) -> tuple[str, int | None]:
        match = re.match(r"^(.*?)\((\d+)\)$", value)
        return (match.group(1), int(match.group(2))) if match else (value, None)

    def epoch(value: str) -> int | None:
        try:
            return int(datetime.fromisoformat(value).timestamp())  # scontrol prints local time
        except ValueError:
            return None

    user, uid = idname(pairs.get("UserId", ""))
    group, gid = idname(pairs.get("GroupId", ""))
    exit_code = pairs.get("ExitCode", "")
    code, _, sig = exit_code.partition(":")
    return SlurmJob(
        job_id=job_id,
        user=user,
        uid=uid,
        group=group,
        gid=gid,
        account=pairs.get("Account", "") if pairs.get("Account") != "(null)" else "",
        partition=pairs.get("Partition", ""),
        qos=pairs.get("QOS", ""),
        name=pairs.get("JobName", ""),
        nodelist=pairs.get("NodeList", "") if pairs.get("NodeList") != "(null)" else "",
        num_nodes=_positive(number(pairs.get("NumNodes", "").split("-")[0])),
        cpus=_positive(number(pairs.get("NumCPUs"))),
        tasks=_positive(number(pairs.get("NumTasks"))),
        start=epoch(pairs.get("StartTime", "")),
        end=epoch(pairs.get("EndTime", "")),
        state=state(pairs.get("JobState")),
        exit_code=exit_code_of(number(code), int(sig) if sig.isdigit() else None),
        exit_signal=int(sig) if sig.isdigit() else None,
        **_array_het(
            pairs.get("ArrayJobId"),
            pairs.get("ArrayTaskId"),
            pairs.get("HetJobId"),
            pairs.get("HetJobOffset"),
        ),
    )
