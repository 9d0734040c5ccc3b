"""A small wrapper around squeue/sacct/scontrol: the only place the collector runs Slurm commands.

Every call has a timeout and raises SlurmUnavailable (no CLI on this host) or
SlurmError (the command failed or printed something unreadable) with a message
an admin can act on.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from datetime import datetime
from typing import Any

from jobpulse.collector.slurm import parse
from jobpulse.collector.slurm.parse import SlurmJob

log = logging.getLogger(__name__)
TIMEOUT = 30.0


class SlurmUnavailable(RuntimeError):
    """This host has no Slurm command-line tools."""


class SlurmError(RuntimeError):
    """A Slurm command failed or printed something unreadable."""


def available() -> bool:
    return shutil.which("squeue") is not None


def _run(args: list[str], timeout: float = TIMEOUT) -> str:
    exe = shutil.which(args[0])
    if exe is None:
        raise SlurmUnavailable(f"{args[0]} not found on the collector host (no Slurm CLI in PATH)")
    try:
        done = subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SlurmError(f"{' '.join(args)} did not answer within {timeout:.0f}s") from exc
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[:500]
        raise SlurmError(f"{' '.join(args)} exited {done.returncode}: {said}")
    return done.stdout


def _json(args: list[str], timeout: float = TIMEOUT) -> dict[str, Any]:
    out = _run(args, timeout)
    try:
        doc = json.loads(out)
    except ValueError as exc:
        # e.g. "Slurm accounting storage is disabled" from sacct without slurmdbd
        raise SlurmError(f"{' '.join(args)} printed no JSON: {out.strip()[:200]}") from exc
    if not isinstance(doc, dict):
        raise SlurmError(f"{' '.join(args)} printed JSON that is not an object")
    return doc


def squeue() -> list[SlurmJob]:
    """Jobs slurmctld knows now (running, pending, recently ended)."""
    return parse.jobs(_json(["squeue", "--json"]), "squeue")


def sacct(since: int, job_id: int | None = None) -> list[SlurmJob]:
    """Accounting records of jobs active since ``since`` (epoch s); needs slurmdbd. Without ``-X``:
    each job's record then holds its steps (22.05 has no task count, TotalCPU or a cancelled job's
    signal on the job's own record, only on its steps)."""
    start = datetime.fromtimestamp(since).strftime("%Y-%m-%dT%H:%M:%S")  # sacct takes local time
    args = ["sacct", "--json", "--allusers", "-S", start]
    if job_id is not None:
        args += ["-j", str(job_id)]
    return parse.jobs(_json(args), "sacct")


def job(job_id: int) -> SlurmJob | None:
    """One job, from the best source available: sacct, else squeue, else scontrol."""
    try:
        found = [j for j in sacct(946684800, job_id) if j.job_id == job_id]
        if found:
            return max(found, key=lambda j: j.start or 0)
    except SlurmError as exc:
        log.info("sacct has nothing for job %d (%s); asking slurmctld", job_id, exc)
    found = [j for j in squeue() if j.job_id == job_id]
    if found:
        return found[0]
    try:
        return parse.from_scontrol(_run(["scontrol", "show", "job", str(job_id)]))
    except SlurmError:
        return None


def sacct_parsable(fields: list[str], start: str, end: str, timeout: float = 300.0) -> str:
    """``sacct --parsable2`` of every user's job allocations active between ``start`` and ``end``
    (sacct's own time text, local time), no header: one line per job, fields joined by "|"."""
    return _run(
        [
            "sacct",
            "--allusers",
            "--allocations",
            "--parsable2",
            "--noheader",
            f"--format={','.join(fields)}",
            f"--starttime={start}",
            f"--endtime={end}",
        ],
        timeout=timeout,
    )


# What sacct --json puts in ``errors`` for a query that matched no job: no failure.
EMPTY_RESULT = 9003


def _nothing_found(error: Any) -> bool:
    return isinstance(error, dict) and (
        parse.number(error.get("error_number", error.get("errno"))) == EMPTY_RESULT
        or error.get("description") == "Nothing found"
    )


def sacct_version() -> str:
    """What ``sacct --version`` prints ("slurm 23.02.4"; Debian's "slurm-wlm 22.05.8")."""
    return _run(["sacct", "--version"]).strip()


def sacct_json(start: str, end: str, timeout: float = 300.0) -> dict[str, Any]:
    """``sacct --json`` of every user's job allocations active between ``start`` and ``end``, the same
    selection as ``sacct_parsable`` (Slurm 21.08 and later, with slurmdbd). An older sacct answers that
    it does not know the option (SlurmError: "unrecognized option '--json'"); errors sacct puts in the
    document's ``errors`` list are raised too, but "Nothing found" (error 9003, ESLURM_REST_EMPTY_RESULT):
    22.05 says that of a window without jobs, exit status 0 (tests/fixtures/slurm/sacct-json-nothing-found.json)."""
    args = ["sacct", "--json", "--allusers", "--allocations", f"--starttime={start}", f"--endtime={end}"]
    doc = _json(args, timeout)
    errors = [e for e in doc.get("errors") or [] if e and not _nothing_found(e)]
    if errors:
        said = "; ".join(
            str(e.get("description") or e.get("error") or e) if isinstance(e, dict) else str(e)
            for e in errors
        )
        raise SlurmError(f"{' '.join(args)} reported: {said[:500]}")
    return doc
