"""The job list's filters, as plain values: what every dialect's list route asks the job service for."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobpulse.collector.domain.runs import JobRun
from jobpulse.collector.domain.tags import Tag

Bounds = tuple[int | None, int | None]

# An efficiency finding (findings.py) is a tag on its run of this type, created by this name.
FINDING_TAG_TYPE = "finding"
FINDING_CREATED_BY = "jobpulse"


@dataclass
class JobQuery:
    """Filters of the job list; None means "any". Ranges are inclusive (from, to), either end None."""

    user: str | None = None
    user_id: int | None = None
    group: str | None = None
    group_id: int | None = None
    account: str | None = None
    partition: str | None = None
    state: str | None = None
    node: str | None = None
    array_job_id: int | None = None  # the tasks of one job array
    het_job_id: int | None = None  # the components of one heterogeneous job
    is_running: bool | None = None
    num_nodes: Bounds | None = None
    num_tasks: Bounds | None = None
    num_gpus: Bounds | None = None
    time: Bounds | None = None  # start time, epoch seconds
    duration: Bounds | None = None  # seconds
    tag_ids: list[int] = field(default_factory=list)  # every one must be present
    tag_names: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # tags of type "finding"
    sort: str = "StartTime"
    descending: bool = True
    limit: int = 100
    offset: int = 0


@dataclass
class JobListing:
    """One page of the job list: the runs (rows of ``jobs``), how many match in all, each run's tags
    and the tags in use (the list's tag filter offers them)."""

    rows: list[JobRun]
    total: int
    tags_by_run: dict[int, list[Tag]]
    tags_in_use: list[Tag]


@dataclass(frozen=True)
class JobFacts:
    """What one source says about a run: an agent event (prolog, epilog, exec), a REST start, Slurm's
    own records (reconciler, admin refresh). Every source builds one of these and the store maps it to
    columns in one place (``store.jobs.columns``), so a value means the same whoever reported it.

    ``nodes`` holds node names or Slurm hostlist expressions (``n[1-4]``), expanded by the mapper.
    Zero counts mean "not said"; ``user_id``/``group_id`` None likewise.
    """

    user_name: str = ""
    user_id: int | None = None
    group_name: str = ""
    group_id: int | None = None
    account: str = ""
    partition: str = ""
    qos: str = ""
    job_name: str = ""
    nodes: tuple[str, ...] = ()
    num_nodes: int | None = None
    num_tasks: int | None = None
    tasks_per_node: int | None = None
    cpus: int | None = None
    gpus_per_node: int | None = None
    mem_requested_bytes: int | None = None
    array_job_id: int | None = None
    array_task_id: int | None = None
    het_job_id: int | None = None
    het_job_offset: int | None = None
    job_script: str = ""  # the batch script, as the REST start sends it (JobMon's ``jobScript``)


@dataclass(frozen=True)
class RunChange:
    """What recording one source's word did to a run: the stored run after it, whether that created the
    run (no source had reported it yet) and whether it ended it (the run was running before)."""

    run: JobRun | None  # None: the run is not there (nothing was recorded)
    created: bool = False
    ended: bool = False


# Slurm's "0:125" marks an OOM kill (the epilog's wait status 253): 125 there is no signal.
SLURM_OOM_MARK = 125


def slurm_exit_string(code: int | None, signal: int | None) -> str:
    """Slurm's "code:signal" from a run's stored exit code (JobMon's number: the code, or 128 + a real
    signal) and signal; "" where the signal is not known."""
    if code is None or signal is None:
        return ""
    if signal and signal != SLURM_OOM_MARK:
        return f"0:{signal}"  # killed by the signal: no exit code of its own
    return f"{code}:{signal}"
