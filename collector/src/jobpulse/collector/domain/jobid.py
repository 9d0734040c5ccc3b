"""Slurm job identity as people write it: ``123``, an array task ``123_4``, a het component ``123+1``.

Why a type: Slurm gives every array task and het component a job number of its own (``8_1`` may be
job 9; the last task of an array reuses the array's number), so ``8_1`` must never be read as job 81
or 8 -- and Python's ``int()`` reads ``1_2`` as 12. One parser, ASCII digits only, used by every route
and source, keeps the meanings apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobpulse.common.validate import JOB_NUMBER_MAX, InvalidField

_FORM = re.compile(r"([0-9]{1,10})(?:([_+])([0-9]{1,10}))?\Z")
# Slurm's MaxArraySize is at most 4,000,001, so a task id is below it; het offsets are small.
TASK_ID_MAX = 4_000_000
HET_OFFSET_MAX = 127


@dataclass(frozen=True, slots=True)
class JobId:
    """``job`` alone is a job number; with ``array_task`` it names task ``array_task`` of array ``job``;
    with ``het_offset`` component ``het_offset`` of het job ``job``."""

    job: int
    array_task: int | None = None
    het_offset: int | None = None

    @classmethod
    def parse(cls, text: str, field: str = "id") -> JobId:
        """Parse ``123``, ``123_4`` or ``123+1``; anything else raises InvalidField naming ``field``."""
        match = _FORM.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidField(field, f"{text!r} is not a Slurm job id (123, 123_4 or 123+1)")
        job = int(match.group(1))
        if not 1 <= job <= JOB_NUMBER_MAX:
            raise InvalidField(field, f"job number {job} is out of range [1, {JOB_NUMBER_MAX}]")
        sep, part = match.group(2), match.group(3)
        if sep is None:
            return cls(job)
        number = int(part)
        if sep == "_":
            if number > TASK_ID_MAX:
                raise InvalidField(field, f"array task {number} is out of range [0, {TASK_ID_MAX}]")
            return cls(job, array_task=number)
        if number > HET_OFFSET_MAX:
            raise InvalidField(field, f"het offset {number} is out of range [0, {HET_OFFSET_MAX}]")
        return cls(job, het_offset=number)

    @property
    def is_plain(self) -> bool:
        return self.array_task is None and self.het_offset is None

    def __str__(self) -> str:
        if self.array_task is not None:
            return f"{self.job}_{self.array_task}"
        if self.het_offset is not None:
            return f"{self.job}+{self.het_offset}"
        return str(self.job)
