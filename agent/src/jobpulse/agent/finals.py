"""Whole-job readings taken as a job's steps went (oomwatch.py on v1, jobend_v2.py on v2), kept for the
sampler's next tick: written by a watch thread, taken by the tick."""

from __future__ import annotations

import threading

from jobpulse.agent.sources.base import JobReading


class Finals:
    """job id -> its latest final reading; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readings: dict[str, JobReading] = {}

    def __bool__(self) -> bool:
        return bool(self._readings)

    def put(self, reading: JobReading) -> None:
        with self._lock:
            self._readings[reading.job_id] = reading

    def take(self, only: str | None = None) -> list[JobReading]:
        """The readings kept since the last call (of ``only``'s job), removed."""
        with self._lock:
            if only is not None:
                one = self._readings.pop(only, None)
                return [one] if one is not None else []
            taken, self._readings = list(self._readings.values()), {}
        return taken

    def drop(self, job_id: str) -> None:
        with self._lock:
            self._readings.pop(job_id, None)
