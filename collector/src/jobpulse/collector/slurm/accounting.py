"""sacct's parsable accounting lines as the usage history's records (the exporter's JobRecord shape).

The fields asked for hold no free text (no JobName, no SubmitLine), so a line never holds a newline;
a line with fewer fields than asked is joined with the next all the same, as sacct prints a field's
newline as it is. CPU and GPU counts come from AllocTRES (``cpu=``, ``gres/gpu=``) as the exporter
takes them; hours are the elapsed seconds times those counts.
"""

from __future__ import annotations

from typing import Any

FIELDS = [
    "JobID", "User", "Account", "Partition", "QOS", "State", "Submit", "Start", "End",
    "ElapsedRaw", "AllocCPUS", "AllocTRES", "NNodes", "NodeList", "Cluster",
]  # fmt: skip
UNFINISHED = ("RUNNING", "PENDING", "REQUEUED", "SUSPENDED", "UNKNOWN", "RESIZING", "REQUEUE_HOLD")


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


def _tres(tres: str, key: str) -> int:
    for item in tres.split(","):
        name, _, value = item.partition("=")
        if name == key or (key == "gres/gpu" and name.startswith("gres/gpu:") and name.count(":") == 1):
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


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
    return [
        (row["JobID"], row["Submit"])
        for row, state in _allocations(text, fields)
        if not state or state in UNFINISHED
    ]


def records(text: str, fields: list[str] = FIELDS) -> list[tuple[str, dict[str, Any]]]:
    """(cluster, exporter-shaped record) of each finished job allocation in sacct's output; steps
    (``1.batch``) and jobs still pending or running are left out."""
    out: list[tuple[str, dict[str, Any]]] = []
    for row, state in _allocations(text, fields):
        job = row["JobID"]
        if not state or state in UNFINISHED:
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
        out.append(
            (
                row["Cluster"],
                {
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
                },
            )
        )
    return out
