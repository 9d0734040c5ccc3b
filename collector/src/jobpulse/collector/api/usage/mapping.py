"""The service's usage figures in seed 000's shapes (the front end's types/index.ts, shared clients/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobpulse.collector.domain.usage import BIN_LABELS, UsageGroups, UsageTotals
from jobpulse.collector.services.usage import Dashboard, percentile_from_bins

_QUANTILES = {"p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def _time(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def summary(totals: UsageTotals) -> dict[str, Any]:
    return {
        "total_jobs": totals.jobs,
        "total_cpu_hours": round(totals.cpu_hours, 2),
        "total_gpu_hours": round(totals.gpu_hours, 2),
        "total_users": totals.users,
    }


def job_record(row: dict[str, Any]) -> dict[str, Any]:
    """A usage row as the front end's JobRecord."""
    submit = datetime.fromtimestamp(row["submit"], UTC)
    iso = submit.isocalendar()
    return {
        "JobID": row["job"],
        "User": row["user_name"],
        "Account": row["account"],
        "Partition": row["partition"],
        "State": row["state"],
        "QOS": row["qos"],
        "Submit": _time(row["submit"]),
        "Start": _time(row["start"]),
        "End": _time(row["end"]),
        "CPUHours": row["cpu_hours"],
        "GPUHours": row["gpu_hours"],
        "AllocCPUS": row["cpus"],
        "AllocGPUS": row["gpus"],
        "AllocNodes": row["nodes"],
        "NodeList": row["nodelist"],
        "SubmitYearMonth": submit.strftime("%Y-%m"),
        "SubmitYearWeek": f"{iso.year}-W{iso.week:02d}",
        "SubmitYear": submit.year,
        "Source": row["source"],  # jobpulse: "ingest", "sacct" (backfill) or "monitor" (agents only)
    }


def _xy(keys: list[str], values: list[Any]) -> dict[str, Any]:
    return {"x": keys, "y": values}


def _top(groups: UsageGroups, values: list[float], limit: int) -> dict[str, Any]:
    """The ``limit`` largest, the rest summed as "Other"."""
    pairs = sorted(zip(groups.keys, values, strict=True), key=lambda p: -p[1])
    head, rest = pairs[:limit], pairs[limit:]
    if rest:
        head.append(("Other", sum(v for _, v in rest)))
    return _xy([k or "(none)" for k, _ in head], [round(v, 2) for _, v in head])


def _hist(bins: list[list[int]], mean: float) -> dict[str, Any]:
    total = [sum(column) for column in zip(*bins, strict=True)] if bins else [0] * len(BIN_LABELS)
    median = percentile_from_bins(total, 0.5) / 3600
    return {
        "x": list(BIN_LABELS),
        "y": total,
        "type": "histogram",
        "bin_labels": list(BIN_LABELS),
        "mean": round(mean / 3600, 3),
        "median": round(median, 3),
    }


def _trends(
    groups: UsageGroups, bins: list[list[int]], means: list[float], maxes: list[float] | None
) -> dict[str, Any]:
    """Per period: mean, median, max and quantiles, in hours (quantiles from the rollup's bins)."""
    stats: dict[str, list[float]] = {"mean": [round(m / 3600, 3) for m in means]}
    stats["median"] = [round(percentile_from_bins(b, 0.5) / 3600, 3) for b in bins]
    stats["max"] = (
        [round(m / 3600, 3) for m in maxes]
        if maxes is not None
        else [round(percentile_from_bins(b, 1.0) / 3600, 3) for b in bins]
    )
    for name, q in _QUANTILES.items():
        stats[name] = [round(percentile_from_bins(b, q) / 3600, 3) for b in bins]
    return {"x": groups.keys, "stats": stats}


def _weighted_mean(values: list[float], weights: list[int]) -> float:
    total = sum(weights)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total if total else 0.0


def charts(board: Dashboard, account_segments: int) -> dict[str, Any]:
    """POST /api/dashboard/charts: the summary and the charts jobpulse computes; the charts it does not
    compute yet (per node, per job size, stacked by a colour dimension) are present and empty, so the
    page draws them as "no data" rather than failing."""
    p = board.periods
    empty: dict[str, Any] = {"x": [], "y": []}
    wait_mean = _weighted_mean(p.wait_mean_s, p.jobs)
    duration_mean = _weighted_mean(p.duration_mean_s, p.jobs)
    return {
        "summary": summary(board.totals),
        "cpu_usage_over_time": _xy(p.keys, [round(v, 2) for v in p.cpu_hours]),
        "gpu_usage_over_time": _xy(p.keys, [round(v, 2) for v in p.gpu_hours]),
        "active_users_over_time": _xy(p.keys, p.users),
        "active_users_distribution": _top(board.users, [float(j) for j in board.users.jobs], 20),
        "jobs_over_time": _xy(p.keys, p.jobs),
        "jobs_distribution": _xy(p.keys, p.jobs),
        "jobs_by_account": _top(board.accounts, [float(j) for j in board.accounts.jobs], account_segments),
        "jobs_by_partition": _xy(board.partitions.keys, board.partitions.jobs),
        "jobs_by_state": {"labels": board.states.keys, "values": board.states.jobs},
        "waiting_times_hist": _hist(p.wait_bins, wait_mean),
        "waiting_times_stacked": empty,
        "job_duration_hist": _hist(p.duration_bins, duration_mean),
        "job_duration_stacked": empty,
        "waiting_times_over_time": _xy(p.keys, [round(v / 3600, 3) for v in p.wait_mean_s]),
        "job_duration_over_time": _xy(p.keys, [round(v / 3600, 3) for v in p.duration_mean_s]),
        "waiting_times_trends": _trends(p, p.wait_bins, p.wait_mean_s, p.wait_max_s),
        "job_duration_trends": _trends(p, p.duration_bins, p.duration_mean_s, None),
        "cpus_per_job": empty,
        "gpus_per_job": empty,
        "nodes_per_job": empty,
        "cpu_hours_by_account": _top(board.accounts, board.accounts.cpu_hours, account_segments),
        "gpu_hours_by_account": _top(board.accounts, board.accounts.gpu_hours, account_segments),
        "node_cpu_usage": empty,
        "node_gpu_usage": empty,
    }


def rows(groups: UsageGroups, key: str) -> list[dict[str, Any]]:
    return [
        {key: k, "jobs": j, "cpu_hours": round(c, 2), "gpu_hours": round(g, 2), "users": u}
        for k, j, c, g, u in zip(
            groups.keys, groups.jobs, groups.cpu_hours, groups.gpu_hours, groups.users, strict=True
        )
    ]


def _merged(bins: list[list[int]]) -> list[int]:
    return [sum(column) for column in zip(*bins, strict=True)] if bins else [0] * len(BIN_LABELS)


def quantile_hours(bins: list[list[int]], q: float) -> float:
    """The ``q`` quantile, in hours, of the binned distribution of several periods together."""
    return round(percentile_from_bins(_merged(bins), q) / 3600, 3)


def distribution_hours(bins: list[list[int]], means: list[float], jobs: list[int]) -> dict[str, float]:
    """A report's waiting-time or duration statistics, in hours (quantiles from the rollup's bins)."""
    merged = _merged(bins)
    stats = {
        name: round(percentile_from_bins(merged, q) / 3600, 3)
        for name, q in (("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("p90", 0.9))
    }
    occupied = [i for i, count in enumerate(merged) if count]
    stats["min"] = round(percentile_from_bins(merged, 0.0) / 3600, 3) if occupied else 0.0
    stats["max"] = round(percentile_from_bins(merged, 1.0) / 3600, 3) if occupied else 0.0
    stats["mean"] = round(_weighted_mean(means, jobs) / 3600, 3)
    return stats
