"""A small LRU cache of the charted series of finished jobs (JobMon keeps one too: its jobCache).

A finished job's samples do not change, so its MetricData at one interval, node selection and catalogue
is computed once and served from memory: the expensive part of GET /api/job/{id} is the scan and
bucketing of every sample. Metadata and tags are never cached (tags change). An entry is dropped when a
batch for that job is ingested after all (an agent replaying its spool after an outage), when the
catalogue changes (its fingerprint is part of the key), after ``ttl`` seconds, or when evicted.
Running jobs are never cached.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable

Key = tuple[Hashable, ...]


class JobDataCache:
    def __init__(self, entries: int = 16, ttl: float = 600.0) -> None:
        self.entries = entries
        self.ttl = ttl
        self._data: OrderedDict[Key, tuple[float, int, object]] = OrderedDict()
        self._lock = threading.Lock()  # used from the reader threads
        self.hits = 0
        self.misses = 0

    def get(self, key: Key) -> object | None:
        with self._lock:
            item = self._data.get(key)
            if item is None or time.monotonic() - item[0] > self.ttl:
                self._data.pop(key, None)
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[2]

    def put(self, key: Key, job_id: int, value: object) -> None:
        with self._lock:
            self._data[key] = (time.monotonic(), job_id, value)
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)

    def invalidate_jobs(self, job_ids: Iterable[int]) -> None:
        ids = set(job_ids)
        if not ids:
            return
        with self._lock:
            for key in [k for k, v in self._data.items() if v[1] in ids]:
                del self._data[key]
