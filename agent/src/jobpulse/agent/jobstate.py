"""Per-job state files: ``<state_dir>/jobs/<job_id>.json`` holds a running job's start metadata.

The prolog writes it (GPU UUIDs, SLUID, allocated CPUs) and the epilog removes
it; the sampler reads it so the GPU -> job mapping and the SLUID -> job id
mapping survive an agent restart. Files are written atomically and are
root-only, like the rest of the state directory.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _dir(state_dir: Path) -> Path:
    return state_dir / "jobs"


def write(state_dir: Path, meta: dict[str, Any]) -> Path:
    directory = _dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    job_id = str(meta["job_id"])
    if not (job_id.isascii() and job_id.isdigit()):
        raise ValueError(f"job_id {job_id!r} is not a Slurm job number")
    final = directory / f"{job_id}.json"
    tmp = directory / f".{job_id}.json.tmp"
    with open(tmp, "w") as handle:
        json.dump(meta, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, final)
    return final


def remove(state_dir: Path, job_id: str) -> None:
    (_dir(state_dir) / f"{job_id}.json").unlink(missing_ok=True)


def load_all(state_dir: Path) -> dict[str, dict[str, Any]]:
    """job id -> start metadata of every job with a state file; unreadable files are logged and skipped."""
    result: dict[str, dict[str, Any]] = {}
    try:
        paths = sorted(_dir(state_dir).glob("*.json"))
    except OSError:
        return result
    for path in paths:
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable job state %s: %s", path, exc)
            continue
        if isinstance(meta, dict):
            result[path.stem] = meta
    return result
