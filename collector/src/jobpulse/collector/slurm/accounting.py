"""sacct's parsable accounting lines as the usage history's records (the exporter's JobRecord shape).

The fields asked for hold no free text (no JobName, no SubmitLine), so a line never holds a newline;
a line with fewer fields than asked is joined with the next all the same, as sacct prints a field's
newline as it is. CPU and GPU counts come from AllocTRES (``cpu=``, ``gres/gpu=``) as the exporter
takes them; hours are the elapsed seconds times those counts. ``sacct --json`` gives the same records
through slurm/accounting_json.py; both end in ``record`` and ``Window`` here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jobpulse.collector.slurm.parse import number

FIELDS = [
    "JobID", "User", "Account", "Partition", "QOS", "State", "Submit", "Start", "End",
    "ElapsedRaw", "AllocCPUS", "AllocTRES", "NNodes", "NodeList", "Cluster",
]  # fmt: skip
UNFINISHED = ("RUNNING", "PENDING", "REQUEUED", "SUSPENDED", "UNKNOWN", "RESIZING", "REQUEUE_HOLD")


def finished(state: str) -> bool:
    """Whether a job in ``state`` (its first word, upper case) is over: a later run need not ask again."""
    return bool(state) and state not in UNFINISHED


def split_lines(text: str, width: int) -> list[list[str]]:
    """sacct --parsable2 output as rows of ``width`` fields."""
    rows: list[list[str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        parts = line.split("|")
        if pending is not None:
            pending[-1] += "\n" + parts[0]
            pending.extend(parts[1:])
            parts = pending
        if len(parts) < width:
            pending = parts
            continue
        pending = None
        rows.append(parts[:width])
    return rows


@dataclass(frozen=True)
class Window:
    """What one sacct call said of a time window, whichever output format it printed."""

    records: list[tuple[str, dict[str, Any]]]  # (cluster, exporter-shaped record) of each finished job
    unfinished: list[tuple[str, str]]  # (JobID, Submit) of the jobs a later run must ask for again


def tres_count(items: Iterable[tuple[str, Any]], key: str) -> int:
    """The count of TRES ``key`` ("cpu", "gres/gpu") among (name, count) pairs; 0 when absent. For GPUs,
    ``gres/gpu`` itself, else the sum of the typed ``gres/gpu:TYPE`` (a site that tracks only those).
    Not the first GPU entry: sacct -P lists a job's ``gres/gpu:tesla`` before ``gres/gpu``, --json the
    other way round, and a job holding two types has a typed entry for each."""
    typed = 0
    for name, value in items:
        if name == key:
            return number(value) or 0
        if key == "gres/gpu" and name.startswith("gres/gpu:") and name.count(":") == 1:
            typed += number(value) or 0
    return typed


def _tres(tres: str, key: str) -> int:
    return tres_count(((name, value) for name, _, value in (i.partition("=") for i in tres.split(","))), key)


def record(
    job: str, state: str, row: dict[str, str], elapsed: int, cpus: int, gpus: int, nodes: int
) -> dict[str, Any]:
    """The exporter-shaped record of one finished job allocation: ``row`` holds sacct's text of User,
    Account, Partition, QOS, Submit, Start, End and NodeList; hours are ``elapsed`` seconds times the
    counts."""
    return {
        "JobID": job,
        "User": row["User"],
        "Account": row["Account"],
        "Partition": row["Partition"],
        "State": state,
        "QOS": row["QOS"] or None,
        "Submit": row["Submit"],
        "Start": row["Start"],
        "End": row["End"],
        "CPUHours": round(cpus * elapsed / 3600, 6),
        "GPUHours": round(gpus * elapsed / 3600, 6),
        "AllocCPUS": cpus,
        "AllocGPUS": gpus,
        "AllocNodes": nodes,
        "NodeList": row["NodeList"],
    }


def _allocations(text: str, fields: list[str]) -> list[tuple[dict[str, str], str]]:
    """(row, state) of each job allocation line (no ``1.batch`` step lines); the state's first word,
    upper case ("CANCELLED by 0" is CANCELLED; "" where sacct printed none)."""
    out = []
    for parts in split_lines(text, len(fields)):
        row = dict(zip(fields, parts, strict=True))
        if "." not in row["JobID"]:
            out.append((row, row["State"].split(" ", 1)[0].upper()))
    return out


def unfinished(text: str, fields: list[str] = FIELDS) -> list[tuple[str, str]]:
    """(JobID, Submit) of the job allocations in sacct's output that ``records`` leaves out because
    they have not finished (pending, running, requeued, suspended, or no state): a later run must
    ask for them again."""
    return [(row["JobID"], row["Submit"]) for row, state in _allocations(text, fields) if not finished(state)]


def records(text: str, fields: list[str] = FIELDS) -> list[tuple[str, dict[str, Any]]]:
    """(cluster, exporter-shaped record) of each finished job allocation in sacct's output; steps
    (``1.batch``) and jobs still pending or running are left out."""
    out: list[tuple[str, dict[str, Any]]] = []
    for row, state in _allocations(text, fields):
        job = row["JobID"]
        if not finished(state):
            continue
        try:
            elapsed = int(row["ElapsedRaw"] or 0)
        except ValueError:
            elapsed = 0
        cpus = _tres(row["AllocTRES"], "cpu") or int(
            row["AllocCPUS"] or 0 if row["AllocCPUS"].isdigit() else 0
        )
        gpus = _tres(row["AllocTRES"], "gres/gpu")
        nodes = int(row["NNodes"]) if row["NNodes"].isdigit() else 0
        out.append((row["Cluster"], record(job, state, row, elapsed, cpus, gpus, nodes)))
    return out


def window(text: str, fields: list[str] = FIELDS) -> Window:
    """sacct --parsable2's answer for one window: its finished jobs' records and its unfinished jobs."""
    return Window(records(text, fields), unfinished(text, fields))
