"""``sacct --json``'s job allocations as the records slurm/accounting.py makes from ``--parsable2``.

Why a second reader of the same jobs: JSON names its fields and gives times as epoch seconds, so no
``|`` or newline in a field and no site's ``SLURM_TIME_FORMAT`` can shift what is read. parse.from_sacct
reads each job (every openapi layout parse.py knows: 22.05's plain numbers, 23.02's wrapped ones); what
the parsable path takes as sacct's text is written here as sacct prints it, so both paths store the
same rows (checked against the real 3-node test cluster, tests/e2e/test_slurm_e2e.py):

- JobID: ``42``, an array task ``8_1``, a het component ``12+1``, a pending array's ``8_[1,3-4]`` (JSON
  gives those tasks as 22.05's hex bitmap, ``0x1A``).
- Submit, Start, End: local time, as sacct prints it; ``Unknown`` for a time not known yet (0), ``None``
  for a job that ended without starting (JSON: null).
- CPUs: the allocated ``cpu`` TRES, else the requested one (sacct's AllocCPUS of a job that never ran);
  nodes: ``allocation_nodes``, else the requested ``node`` TRES (sacct's NNodes); GPUs: the allocated
  ``gres/gpu`` TRES only (JSON's ``{"type": "gres", "name": "gpu"}``), as accounting.tres_count counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobpulse.collector.domain import hostnames
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.slurm import accounting
from jobpulse.collector.slurm.parse import SlurmJob, from_sacct, number


def _time(value: Any) -> str:
    """An epoch time as sacct prints it (local time, ``%Y-%m-%dT%H:%M:%S``)."""
    if value is None:
        return "None"
    seconds = number(value)
    if not seconds:
        return "Unknown"
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%dT%H:%M:%S")


def _pending_tasks(value: Any) -> str:
    """A pending array's remaining tasks as sacct -P writes them (``1,3-4``) from JSON's ``array.task``:
    a hex bitmap in 22.05 (``0x1A``: tasks 1, 3 and 4); any other text is kept as it is."""
    text = str(value or "")
    try:
        bits = int(text, 16) if text.lower().startswith("0x") else None
    except ValueError:
        bits = None
    if bits is None:
        return text
    return hostnames.compress(str(i) for i in range(bits.bit_length()) if bits >> i & 1).strip("[]")


def _job_id(job: SlurmJob, raw: dict[str, Any]) -> str:
    """The JobID text sacct prints for this allocation."""
    if job.het_job_id is not None and job.het_job_offset is not None:
        return str(JobId(job.het_job_id, het_offset=job.het_job_offset))
    if job.array_job_id is not None:
        if job.array_task_id is not None:
            return str(JobId(job.array_job_id, array_task=job.array_task_id))
        return f"{job.array_job_id}_[{_pending_tasks((raw.get('array') or {}).get('task'))}]"
    return str(job.job_id)


def _tres(raw: dict[str, Any], which: str) -> list[tuple[str, Any]]:
    """One of a job's TRES lists as (name, count) pairs named as AllocTRES names them (``gres/gpu``)."""
    items = [item for item in (raw.get("tres") or {}).get(which) or [] if isinstance(item, dict)]
    return [
        ("/".join(str(part) for part in (item.get("type"), item.get("name")) if part), item.get("count"))
        for item in items
    ]


def _allocations(doc: dict[str, Any]) -> list[tuple[SlurmJob, dict[str, Any], dict[str, str]]]:
    """(job, its JSON, the parsable row's text fields) of each job allocation in the document."""
    out = []
    for raw in doc.get("jobs") or []:
        if not isinstance(raw, dict):
            continue
        job = from_sacct(raw)
        if not job.job_id:
            continue
        times = raw.get("time") or {}
        row = {
            "JobID": _job_id(job, raw),
            "User": job.user,
            "Account": job.account,
            "Partition": job.partition,
            "QOS": job.qos,
            "Submit": _time(times.get("submission")),
            "Start": _time(times.get("start")),
            "End": _time(times.get("end")),
            "NodeList": job.nodelist,
        }
        out.append((job, raw, row))
    return out


def window(doc: dict[str, Any]) -> accounting.Window:
    """``sacct --json``'s answer for one window: its finished jobs' records (cluster, record) and the
    (JobID, Submit) of its jobs still pending or running, as accounting.window gives them."""
    records: list[tuple[str, dict[str, Any]]] = []
    unfinished: list[tuple[str, str]] = []
    for job, raw, row in _allocations(doc):
        if not accounting.finished(job.state):
            unfinished.append((row["JobID"], row["Submit"]))
            continue
        elapsed = number((raw.get("time") or {}).get("elapsed")) or 0
        gpus = accounting.tres_count(_tres(raw, "allocated"), "gres/gpu")
        record = accounting.record(
            row["JobID"], job.state, row, elapsed, job.cpus or 0, gpus, job.num_nodes or 0
        )
        records.append((job.cluster, record))
    return accounting.Window(records, unfinished)
