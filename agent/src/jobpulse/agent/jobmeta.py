"""Job metadata from untrusted places (slurmd's environment, the agent socket, a spooled event file).

One check for every way a job's metadata enters the agent, built on ``jobpulse.common.validate``: the
hook runs it on the prolog/epilog environment, the agent runs it again on every socket request and
spooled event (an older hook, ``jobpulse-agent exec`` or a hand-written file may have sent anything).
A bad job id refuses the event (without it there is no job); any other bad field is dropped, with a
reason, and the event goes on. Everything that passes fits its ``JobMeta`` protobuf field and a
64-bit SQLite integer, so nothing downstream (protobuf, the collector) can refuse it later.

Imports stay light: the prolog and epilog import this for every job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jobpulse.common import validate
from jobpulse.common.validate import INT32_MAX, INT64_MAX, UINT32_MAX, InvalidField

MAX_GPUS = 64  # GPU references per job and node (8 GPUs x 7 MIG instances, with room)


def _text(max_length: int) -> Callable[[Any, str], str]:
    return lambda value, field: validate.text(value, field, max_length)


def _count(value: Any, field: str) -> int:
    return validate.integer(value, field, 0, UINT32_MAX)


def _gpus(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or len(value) > MAX_GPUS:
        raise InvalidField(field, f"expected a list of at most {MAX_GPUS} GPU references")
    return [validate.identifier(v, field) for v in value]


# JobMeta field -> check (returns the value to keep, raises InvalidField). Keys not listed are ignored
# (a newer hook talking to an older agent); job_id is checked apart because it decides the event.
CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "cluster": validate.node_name,  # Slurm's ClusterName: letters, digits, '_', '-'
    "user": validate.unix_name,
    "group": validate.unix_name,
    "account": _text(255),
    "partition": _text(255),
    "qos": _text(255),
    "job_name": _text(1024),
    "nodelist": validate.hostlist,
    "sluid": lambda value, field: validate.identifier(value, field, 64),
    "gpus": _gpus,
    "uid": validate.unix_id,
    "gid": validate.unix_id,
    "num_nodes": _count,
    "cpus_on_node": _count,
    "num_tasks": _count,
    "exit_code": lambda value, field: validate.integer(value, field, 0, INT32_MAX),
    "exit_signal": lambda value, field: validate.integer(value, field, 0, 255),
    "het_job_id": validate.job_number,
    # Slurm allows at most 128 components (MAX_HET_JOB_COMPONENTS), offsets 0..127
    "het_job_offset": lambda value, field: validate.integer(value, field, 0, 127),
    "start_time": validate.epoch_seconds,
    "end_time": validate.epoch_seconds,
    "mem_requested_bytes": lambda value, field: validate.integer(value, field, 0, INT64_MAX),
    "state": _text(64),
    "source": _text(32),
}


def clean(
    data: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(the fields that pass, one reason per field dropped) of a job's metadata.

    ``names`` maps a field to what the sender called it (``SLURM_JOB_UID`` for ``uid``), for the
    reasons. Empty strings and None mean "not given" and are left out silently.

    Raises:
        InvalidField: ``job_id`` is missing or not a Slurm job number (ASCII digits, 1 .. 2**32-1).
    """
    names = names or {}
    raw_id = data.get("job_id")
    if raw_id is None or raw_id == "":
        raise InvalidField(names.get("job_id", "job_id"), "missing")
    fields: dict[str, Any] = {"job_id": str(validate.job_number(raw_id, names.get("job_id", "job_id")))}
    dropped: list[str] = []
    for key, value in data.items():
        check = CHECKS.get(key)
        if check is None or value is None or value == "":
            continue
        try:
            fields[key] = check(value, names.get(key, key))
        except InvalidField as exc:
            dropped.append(str(exc))
    return fields, dropped
