"""A row of ``jobs`` as the domain's :class:`JobRun`: the one place that decoding is written (the job
reads in jobs.py and the summary figures in summaries.py both use it)."""

from __future__ import annotations

import json
import sqlite3

from jobpulse.collector.domain.runs import JobRun


def run_of(row: sqlite3.Row) -> JobRun:
    """The domain's run from a row of ``jobs`` (node list decoded, flags as bools): the one place a job
    row becomes what services and dialects see."""
    values = dict(row)
    values["nodes"] = tuple(json.loads(values["nodes"] or "[]"))
    values["is_running"] = bool(values["is_running"])
    return JobRun(**values)
