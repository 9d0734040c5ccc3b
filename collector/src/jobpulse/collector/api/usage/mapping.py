"""The service's usage figures in seed 000's shapes (the front end's types/index.ts, shared clients/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobpulse.collector.domain.usage import BIN_LABELS, UsageGroups, UsageTotals
from jobpulse.collector.services import usage_charts
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


_STACK_COLOURS = ("#2e7d32", "#66bb6a", "#c0ca33", "#fdd835", "#fb8c00", "#e53935", "#8e24aa", "#3949ab")
_PERIOD_LABELS = {"day": "days", "week": "weeks", "month": "months", "quarter": "quarters", "year": "years"}


def _percent(part: float, whole: float) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def _hist_percent(bins: list[list[int]], mean: float) -> dict[str, Any]:
    """Waiting times or durations: the share of jobs per bin, in percent (the page's "Percentage of
    Jobs" axis), with mean and median in hours."""
    chart = _hist(bins, mean)
    total = sum(chart["y"])
    chart["counts"] = chart["y"]
    chart["y"] = [_percent(c, total) for c in chart["y"]]
    return chart


def _stacked(p: UsageGroups, bins: list[list[int]]) -> dict[str, Any]:
    """Per period, the share of its jobs in each bin (the page's stacked percentage bars)."""
    totals = [sum(b) for b in bins]
    series = [
        {
            "name": label,
            "data": [_percent(b[i], t) for b, t in zip(bins, totals, strict=True)],
            "color": _STACK_COLOURS[i % len(_STACK_COLOURS)],
        }
        for i, label in enumerate(BIN_LABELS)
    ]
    return {"x": p.keys, "series": series}


def _per_period_hist(values: list[float], unit: str = "") -> dict[str, Any]:
    """How many periods had how much (jobs, CPU- or GPU-hours per period): ten equal bins from 0 to the
    largest period, with the mean and median period."""
    if not values:
        return {"x": [], "y": [], "type": "histogram"}
    top = max(values) or 1.0
    width = top / 10
    counts = [0] * 10
    for v in values:
        counts[min(9, int(v / width))] += 1
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    labels = [f"{round(i * width):,}-{round((i + 1) * width):,}{unit}" for i in range(10)]
    return {
        "x": labels,
        "y": counts,
        "type": "histogram",
        "bin_labels": labels,
        "mean": round(sum(values) / len(values), 2),
        "median": round(median, 2),
    }


def _pie(labels: list[str], values: list[float], limit: int | None = None) -> dict[str, Any]:
    """A Color By pie: the largest ``limit`` values, the rest as "Other"."""
    pairs = sorted(zip(labels, values, strict=True), key=lambda p: -p[1])
    if limit is not None and len(pairs) > limit:
        pairs = [*pairs[:limit], ("Other", sum(v for _, v in pairs[limit:]))]
    return {
        "type": "pie",
        "labels": [k or "(none)" for k, _ in pairs],
        "values": [round(v, 2) for _, v in pairs],
    }


def _color_sums(board: Dashboard, index: int) -> tuple[list[str], list[float]]:
    """Per Color By value, the sum of column ``index`` of its periods."""
    sums: dict[str, float] = {}
    for row in board.color_periods:
        sums[str(row[1])] = sums.get(str(row[1]), 0.0) + float(row[index] or 0)
    return list(sums), list(sums.values())


def _with_series(chart: dict[str, Any], board: Dashboard, index: int, digits: int = 2) -> dict[str, Any]:
    """``chart`` (x: the periods) with one series per Color By value (its ``index`` column per period)."""
    if board.color_by is None:
        return chart
    position = {k: i for i, k in enumerate(chart["x"])}
    series: dict[str, list[float]] = {}
    for row in board.color_periods:
        data = series.setdefault(str(row[1]) or "(none)", [0] * len(chart["x"]))
        if row[0] in position:
            data[position[row[0]]] = round(float(row[index] or 0), digits)
    return {**chart, "series": [{"name": name, "data": data} for name, data in series.items()]}


def _sizes(pairs: list[tuple[int, int]], skip_zero: bool = False) -> dict[str, Any]:
    kept = [(size, jobs) for size, jobs in pairs if jobs and not (skip_zero and size == 0)]
    return {"x": [s for s, _ in kept], "y": [j for _, j in kept], "type": "histogram"}


def _node_chart(board: Dashboard, which: int, normalize: bool) -> dict[str, Any]:
    """CPU (``which`` 0) or GPU (1) hours per node; ``normalize``: percent of the node's capacity over
    the window, for the nodes whose size agents reported (the others are named in ``not_normalized``)."""
    nodes = [(n, h[which]) for n, h in board.nodes.items() if which == 0 or h[1] > 0]
    hours = 24 * ((board.until - board.since).days + 1) if board.since and board.until else 0
    hardware = {
        n: {"cpu_cores": board.hardware[n][0], "gpu_count": board.hardware[n][1]}
        for n, _ in nodes
        if n in board.hardware
    }
    chart: dict[str, Any] = {
        "x": [n for n, _ in nodes],
        "y": [round(v, 2) for _, v in nodes],
        "hardware_config": hardware,
        "total_hours": hours,
        "normalized": False,
    }
    if normalize:
        key = "cpu_cores" if which == 0 else "gpu_count"
        known = [(n, v) for n, v in nodes if n in hardware and hardware[n][key] and hours]
        chart["x"] = [n for n, _ in known]
        chart["y"] = [round(min(100.0, 100 * v / (hardware[n][key] * hours)), 2) for n, v in known]
        chart["normalized"] = True
        chart["not_normalized"] = [n for n, _ in nodes if n not in dict(known)]
    return chart


def _user_activity(board: Dashboard, periods: int) -> dict[str, Any]:
    """Users by the number of periods they were active in (Color By User: the most active users)."""
    label = _PERIOD_LABELS[board.period]
    active = board.user_periods
    common = {"total_users": len(active), "total_periods": periods, "period_label": label}
    if board.color_by == "user_name":
        return {**_pie(list(active), [float(v) for v in active.values()], 20), **common}
    top = max(active.values(), default=0)
    counts = [0] * top
    for n in active.values():
        counts[n - 1] += 1
    values = sorted(active.values())
    return {
        "x": list(range(1, top + 1)),
        "y": counts,
        "type": "histogram",
        "mean": round(sum(values) / len(values), 2) if values else 0,
        "median": float(values[len(values) // 2]) if values else 0,
        **common,
    }


def charts(board: Dashboard, account_segments: int, normalize_node_usage: bool = False) -> dict[str, Any]:
    """POST /api/dashboard/charts: every chart the front end reads (its types/index.ts
    AggregatedChartsResponse), as its components draw them (docs/compat/usage-history.md)."""
    p = board.periods
    wait_mean = _weighted_mean(p.wait_mean_s, p.jobs)
    duration_mean = _weighted_mean(p.duration_mean_s, p.jobs)
    periods = (
        usage_charts.periods_in(board.since, board.until, board.period)
        if board.since and board.until and board.since <= board.until
        else len(p.keys)
    )
    colored = board.color_by is not None
    out: dict[str, Any] = {
        "summary": summary(board.totals),
        "cpu_usage_over_time": _with_series(_xy(p.keys, [round(v, 2) for v in p.cpu_hours]), board, 3),
        "gpu_usage_over_time": _with_series(_xy(p.keys, [round(v, 2) for v in p.gpu_hours]), board, 4),
        "active_users_over_time": _xy(p.keys, p.users),
        "active_users_distribution": _top(board.users, [float(j) for j in board.users.jobs], 20),
        "user_activity_frequency": _user_activity(board, periods),
        "jobs_over_time": _with_series(_xy(p.keys, p.jobs), board, 2, 0),
        "jobs_distribution": _pie(*_color_sums(board, 2), 20) if colored else _per_period_hist([float(j) for j in p.jobs]),
        "jobs_by_account": _top(board.accounts, [float(j) for j in board.accounts.jobs], account_segments),
        "jobs_by_partition": _xy(board.partitions.keys, board.partitions.jobs),
        "jobs_by_state": {"labels": board.states.keys, "values": board.states.jobs},
        "waiting_times_hist": _pie(*_hours(_color_sums(board, 5))) if colored else _hist_percent(p.wait_bins, wait_mean),
        "waiting_times_stacked": _stacked(p, p.wait_bins),
        "job_duration_hist": _pie(*_hours(_color_sums(board, 6))) if colored else _hist_percent(p.duration_bins, duration_mean),
        "job_duration_stacked": _stacked(p, p.duration_bins),
        "waiting_times_over_time": _xy(p.keys, [round(v / 3600, 3) for v in p.wait_mean_s]),
        "job_duration_over_time": _xy(p.keys, [round(v / 3600, 3) for v in p.duration_mean_s]),
        "waiting_times_trends": _trends(p, p.wait_bins, p.wait_mean_s, p.wait_max_s),
        "job_duration_trends": _trends(p, p.duration_bins, p.duration_mean_s, None),
        "cpus_per_job": _sizes(board.sizes.get("cpus", [])),
        "gpus_per_job": _sizes(board.sizes.get("gpus", []), skip_zero=True),
        "nodes_per_job": _sizes(board.sizes.get("nodes", [])),
        "cpu_hours_by_account": _pie(*_color_sums(board, 3), 20) if colored else _per_period_hist(p.cpu_hours, "h"),
        "gpu_hours_by_account": _pie(*_color_sums(board, 4), 20) if colored else _per_period_hist(p.gpu_hours, "h"),
        "node_cpu_usage": _node_chart(board, 0, normalize_node_usage),
        "node_gpu_usage": _node_chart(board, 1, normalize_node_usage),
    }  # fmt: skip
    return out


def _hours(pair: tuple[list[str], list[float]]) -> tuple[list[str], list[float]]:
    return pair[0], [v / 3600 for v in pair[1]]


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
