"""Turning stored rows and series into JobMon payloads (shared by the job, metric and list routes)."""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from jobpulse.collector import metric_catalog
from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.domain.runs import RunScope
from jobpulse.collector.schemas import JobMetadata, JobTag, MetricConfig, MetricData, Node
from jobpulse.collector.store import samples, series
from jobpulse.collector.summary import load_summary

DEFAULT_MAX_POINTS_PER_JOB = 200  # as JobMon: a chart gets about this many points
DEFAULT_INTERVALS = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
MAX_SAMPLE_INTERVAL = 7 * 86400.0


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def job_metadata(row: dict[str, Any], tags: Iterable[dict[str, Any]] = ()) -> JobMetadata:
    """A jobs row in the JobMetadata shape (JobMon field names, times in epoch seconds)."""
    num_nodes, num_tasks = _int(row["num_nodes"]), _int(row["num_tasks"])
    return JobMetadata(
        Id=row["job_id"],
        UserId=_int(row["user_id"]),
        UserName=row["user_name"],
        GroupId=_int(row["group_id"]),
        GroupName=row["group_name"],
        ClusterId=row["cluster"],
        NumNodes=num_nodes,
        NumTasks=num_tasks,
        TasksPerNode=num_tasks // num_nodes if num_nodes else 0,
        GPUsPerNode=_int(row["gpus_per_node"]),
        StartTime=_int(row["start_time"]),
        StopTime=_int(row["stop_time"]),
        IsRunning=bool(row["is_running"]),
        JobName=row["job_name"],
        Account=row["account"],
        TTL=0,
        Partition=row["partition"],
        JobScript="",
        ExitCode=_int(row["exit_code"]),
        Nodes=[Node(Name=n) for n in json.loads(row["nodes"])],
        Tags=[JobTag(Id=t["Id"], Name=t["Name"], Type=t["Type"], CreatedBy=t["CreatedBy"]) for t in tags],
        State=row["state"],
        NodeList=row["nodelist"],
        Cpus=_int(row["cpus"]),
        JobIdString=str(job_ref(row)),
        ArrayJobId=row.get("array_job_id"),
        ArrayTaskId=row.get("array_task_id"),
        HetJobId=row.get("het_job_id"),
        HetJobOffset=row.get("het_job_offset"),
    )


def job_ref(row: dict[str, Any]) -> JobId:
    """How Slurm names the run: its array task or het component when it is one, else its number."""
    if row.get("array_job_id") is not None and row.get("array_task_id") is not None:
        return JobId(int(row["array_job_id"]), array_task=int(row["array_task_id"]))
    if row.get("het_job_id") is not None and row.get("het_job_offset") is not None:
        return JobId(int(row["het_job_id"]), het_offset=int(row["het_job_offset"]))
    return JobId(int(row["job_id"]))


def tags_by_run(db: sqlite3.Connection, run_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The tags of many runs in one query (the job list shows each job's tags)."""
    result: dict[int, list[dict[str, Any]]] = {r: [] for r in run_ids}
    if not run_ids:
        return result
    rows = db.execute(
        f"""SELECT jt.run_id, t.id, t.name, t.type, t.created_by FROM job_tags jt JOIN tags t
            ON t.id = jt.tag_id WHERE jt.run_id IN ({", ".join("?" for _ in run_ids)}) ORDER BY t.name""",
        run_ids,
    )
    for r in rows:
        result[r[0]].append({"Id": r[1], "Name": r[2], "Type": r[3], "CreatedBy": r[4]})
    return result


def sample_intervals(row: dict[str, Any], tick: float) -> tuple[list[float], float]:
    """(the intervals offered, the default) so a chart has about DEFAULT_MAX_POINTS_PER_JOB points;
    JobMon's CalculateSampleIntervals, with the measured tick offered first when finer than 30 s."""
    stop = time.time() if row["is_running"] or not row["stop_time"] else row["stop_time"]
    duration = max(0.0, float(stop) - float(row["start_time"]))
    factor = math.ceil(duration / tick / DEFAULT_MAX_POINTS_PER_JOB)
    best = factor * tick
    chosen = tick
    for v in DEFAULT_INTERVALS:
        if abs(v - best) < abs(chosen - best):
            chosen = v
    intervals = [v for v in DEFAULT_INTERVALS if tick <= v <= chosen]
    if not intervals or intervals[0] != tick:
        intervals.insert(0, tick)
    return intervals, chosen


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def points(node: str, series: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """JobMon's QueryResult rows (the keys its Influx queries return)."""
    return [{"_time": rfc3339(ts), "_value": value, "hostname": node} for ts, value in series]


def raw_csv(config: MetricConfig, per_node: dict[str, list[tuple[float, float]]]) -> str:
    """The RawData string: one CSV row per sample (time, node, value), as the export button saves it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["_time", "hostname", "_field", "_value"])
    for node in sorted(per_node):
        for ts, value in per_node[node]:
            writer.writerow([rfc3339(ts), node, config.GUID, repr(value)])
    return out.getvalue()


def samples_csv(rows: list[dict[str, Any]], columns: Iterable[str]) -> str:
    """The full-resolution export of a job: one row per node and sample, every metric a column."""
    cols = list(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "node", *cols])
    for r in rows:
        writer.writerow(
            [rfc3339(r["ts"] / 1000), r["node"], *("" if r[c] is None else repr(r[c]) for c in cols)]
        )
    return out.getvalue()


def job_summary(db: sqlite3.Connection, run_id: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The stored summary of a run and its findings (collector/summary.py), or (None, []) until it has one."""
    summary = load_summary(db, run_id)
    findings: list[dict[str, Any]] = summary.pop("findings", []) if summary else []
    return summary, findings


def metric_data(
    db: Any, scope: RunScope, catalog: list[MetricConfig], interval: float, raw: bool, step: str = ""
) -> list[MetricData]:
    """Every catalogue metric of the run per node: bucketed with its AggFn, or every sample (raw)."""
    measurements = sorted({m.Measurement for m in catalog})
    metric_data: list[MetricData] = []
    if raw:
        rows = samples.job_samples(db, scope.job_id, scope.start_ms, scope.end_ms, step)
        data: series.Points = {m: {} for m in measurements}
        for r in rows:
            if r["node"] in scope.nodes:
                for m in measurements:
                    if r[m] is not None:
                        data[m].setdefault(r["node"], []).append((r["ts"] / 1000, float(r[m])))
    else:
        by_fn: dict[str, series.Points] = {}
        wanted: dict[str, set[str]] = {}  # one scan per aggregation, of only its metrics
        for entry in catalog:
            fn_name = metric_catalog.normalise_agg(entry.AggFn) or "mean"
            wanted.setdefault(fn_name, set()).add(entry.Measurement)
        for fn, names in wanted.items():
            by_fn[fn] = series.job_series_points(db, scope, sorted(names), interval, fn, step=step)
    for metric in catalog:
        if raw:
            per_node = data[metric.Measurement]
        else:
            per_node = by_fn[metric_catalog.normalise_agg(metric.AggFn) or "mean"][metric.Measurement]
        if not per_node:
            continue
        metric_data.append(
            MetricData(
                Config=metric,
                Data={n: points(n, p) for n, p in per_node.items()},
                RawData=raw_csv(metric, per_node) if raw else "",
            )
        )
    return metric_data
