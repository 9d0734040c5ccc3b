"""The job report as text, in the spirit of Princeton's ``jobstats``: who, where, when, what was given;
bars of how much of it was used; the detail per node; the notes from jobpulse's findings with their hints.

Pure functions of the API's job page (``GET /api/job/{id}``: ``Metadata``, ``Summary``, ``Findings``,
``MetricData``),
so the text can be tested without a collector. A finished job is reported from its stored summary (the
same figures the findings used); a running job, or one whose summary is not computed yet, from the
samples so far, and the report says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from jobpulse.common.units import human_bytes

WIDTH = 80
BAR = 50
SHORT_JOB_S = 60.0  # below this the figures rest on a handful of samples: said so in the notes

_RESET, _RED, _YELLOW, _GREEN, _BOLD = "\033[0m", "\033[31m", "\033[33m", "\033[32m", "\033[1m"


@dataclass
class NodeFigures:
    """One node's use of what it was given."""

    node: str
    cpu_seconds: float | None = None
    cores: float | None = None
    cpu_efficiency: float | None = None
    mem_peak: float | None = None
    mem_limit: float | None = None
    gpu_util: float | None = None
    gpu_mem_peak: float | None = None


@dataclass
class Report:
    """What the text (and ``--json``) is made of."""

    job: dict[str, Any]  # the header: id, user, account, state, nodes, cores, memory, GPUs, times
    complete: bool  # from the finished job's summary (else: from the samples so far)
    overall: dict[str, float | None]  # cpu, memory, gpu, gpu_memory: percent of what was given
    nodes: list[NodeFigures] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)  # {"rule", "hint", "value", "threshold"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "complete": self.complete,
            "overall_percent": self.overall,
            "nodes": [vars(n) for n in self.nodes],
            "notes": self.notes,
        }


def _num(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _pct(used: float | None, given: float | None) -> float | None:
    return 100.0 * used / given if used is not None and given else None


def _series(page: dict[str, Any], guid: str) -> dict[str, list[float]]:
    """Per node, the values of one metric in the page's MetricData (empty when not served)."""
    for metric in page.get("MetricData") or []:
        if metric.get("Config", {}).get("GUID") == guid:
            return {
                node: [v for p in points if (v := _num(p.get("_value"))) is not None]
                for node, points in (metric.get("Data") or {}).items()
            }
    return {}


def build_report(page: dict[str, Any], now: float | None = None) -> Report:
    """The report of one job page."""
    meta = page["Metadata"]
    summary = page.get("Summary") or None
    now = time.time() if now is None else now
    start = _num(meta.get("StartTime")) or 0.0
    stop = _num(meta.get("StopTime")) or now
    running = bool(meta.get("IsRunning"))
    duration = max(0.0, (now if running else stop) - start)
    node_names = [n["Name"] for n in meta.get("Nodes") or []] or [
        n for n in str(meta.get("NodeList", "")).split("|") if n
    ]
    cores = _num(meta.get("Cpus"))
    gpus = (_num(meta.get("GPUsPerNode")) or 0) * max(1, len(node_names))
    header: dict[str, Any] = {
        "id": meta.get("JobIdString") or str(meta.get("Id")),
        "name": meta.get("JobName", ""),
        "user": meta.get("UserName", ""),
        "group": meta.get("GroupName", ""),
        "account": meta.get("Account", ""),
        "cluster": meta.get("ClusterId", ""),
        "partition": meta.get("Partition", ""),
        "state": meta.get("State") or ("RUNNING" if running else ""),
        "exit_code": meta.get("ExitCode"),
        "running": running,
        "nodes": node_names,
        "cores": cores,
        "memory_bytes": None,
        "gpus": gpus,
        "start": start,
        "stop": None if running else stop,
        "duration_s": duration,
    }
    report = (
        _from_summary(header, summary, page.get("Findings") or [])
        if summary
        else _from_samples(header, page, duration)
    )
    if duration < SHORT_JOB_S:
        report.notes.insert(
            0,
            {
                "rule": "short_job",
                "hint": f"This job ran {_duration(duration)}: with a sample every few seconds its figures rest "
                "on a handful of readings. Use them as a rough guide.",
            },
        )
    if not report.complete:
        report.notes.append(
            {
                "rule": "not_final",
                "hint": "The job is still running (or just ended): these are the figures so far. The full "
                "report, with notes on efficiency, is ready about a minute after the job ends.",
            }
        )
    return report


def _from_summary(header: dict[str, Any], s: dict[str, Any], findings: list[dict[str, Any]]) -> Report:
    header["memory_bytes"] = _num(s.get("mem_requested_bytes")) or _num(s.get("mem_limit_bytes"))
    header["gpus"] = max(header["gpus"] or 0, _num(s.get("gpus")) or 0)
    header["gpu_mem_peak_bytes"] = _num(s.get("gpu_mem_peak_bytes"))
    nodes = []
    for n in s.get("nodes") or []:
        nodes.append(
            NodeFigures(
                node=n["node"],
                cpu_seconds=_num(n.get("cpu_seconds")),
                cores=_num(n.get("alloc_cpus")),
                cpu_efficiency=_num(n.get("cpu_efficiency")),
                mem_peak=_num(n.get("mem_peak_bytes")),
                mem_limit=_num(n.get("mem_limit_bytes")),
                gpu_util=_num(n.get("gpu_util_mean_percent")),
                gpu_mem_peak=_num(n.get("gpu_mem_peak_bytes")),
            )
        )
    if not header["cores"]:
        header["cores"] = sum(n.cores or 0 for n in nodes) or None
    gpu_mem_total = sum(_num(g.get("mem_total_bytes")) or 0 for g in s.get("gpu_detail") or []) or None
    overall = {
        "cpu": _pct(_num(s.get("cpu_efficiency")), 1.0),
        "memory": _pct(
            _num(s.get("mem_peak_bytes")), _num(s.get("mem_limit_bytes")) or header["memory_bytes"]
        ),
        "gpu": _num(s.get("gpu_util_mean_percent")),
        "gpu_memory": _pct(_num(s.get("gpu_mem_peak_bytes")), gpu_mem_total),
    }
    notes = [
        {"rule": f["rule"], "hint": f["hint"], "value": f.get("value"), "threshold": f.get("threshold")}
        for f in findings  # the page's Findings: the summary's, with their hints
    ]
    if (_num(s.get("oom_kills")) or 0) > 0 and not any(n["rule"].startswith("oom") for n in notes):
        notes.append(
            {
                "rule": "oom_kill",
                "hint": "The kernel killed a process of this job for using more memory than it was given. "
                "Request more memory (--mem / --mem-per-cpu) or use less.",
            }
        )
    return Report(header, True, overall, nodes, notes)


def _from_samples(header: dict[str, Any], page: dict[str, Any], duration: float) -> Report:
    cores = _series(page, "cpu_cores")
    alloc = _series(page, "alloc_cpus")
    peak = _series(page, "mem_peak_bytes") or _series(page, "mem_current_bytes")
    limit = _series(page, "mem_limit_bytes")
    gpu = _series(page, "gpu_util_percent")
    nodes = []
    for node in sorted(set(cores) | set(peak) | set(header["nodes"])):
        used = cores.get(node) or []
        given = max(alloc.get(node) or [0.0]) or None
        mean = sum(used) / len(used) if used else None
        nodes.append(
            NodeFigures(
                node=node,
                cpu_seconds=mean * duration if mean is not None else None,
                cores=given,
                cpu_efficiency=mean / given if mean is not None and given else None,
                mem_peak=max(peak.get(node) or [math.nan]) if peak.get(node) else None,
                mem_limit=min(limit.get(node) or [math.inf]) if limit.get(node) else None,
                gpu_util=sum(gpu[node]) / len(gpu[node]) if gpu.get(node) else None,
            )
        )
    effs = [n.cpu_efficiency for n in nodes if n.cpu_efficiency is not None]
    mems = [_pct(n.mem_peak, n.mem_limit) for n in nodes]
    gpus = [n.gpu_util for n in nodes if n.gpu_util is not None]
    overall = {
        "cpu": 100.0 * sum(effs) / len(effs) if effs else None,
        "memory": max((m for m in mems if m is not None), default=None),
        "gpu": sum(gpus) / len(gpus) if gpus else None,
        "gpu_memory": None,
    }
    return Report(header, False, overall, nodes, [])


# -- text --------------------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    s = round(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}-" if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def _when(ts: float | None) -> str:
    return time.strftime("%a %b %d, %Y at %H:%M:%S", time.localtime(ts)) if ts else "-"


def _colour(pct: float | None, kind: str) -> str:
    """Low use of CPU or GPU is waste (red/yellow); memory is a risk only near its limit."""
    if pct is None:
        return ""
    if kind == "memory":
        return _RED if pct >= 90 else _GREEN
    return _RED if pct < 25 else _YELLOW if pct < 50 else _GREEN


def _bar(label: str, pct: float | None, kind: str, colour: bool, instead: str = "not measured") -> str:
    if pct is None:
        return f"  {label:<20} {instead}"
    filled = min(BAR, max(0, round(BAR * pct / 100)))
    text = f"  {label:<20} [{'|' * filled}{' ' * (BAR - filled)} {pct:3.0f}%]"
    c = _colour(pct, kind) if colour else ""
    return f"{c}{text}{_RESET}" if c else text


def _title(text: str, colour: bool) -> list[str]:
    t = text.center(WIDTH).rstrip()
    return ["", f"{_BOLD}{t}{_RESET}" if colour else t, "=" * WIDTH]


def render_text(report: Report, colour: bool = True) -> str:
    """The report as people read it in a terminal or an email."""
    j = report.job
    state = j["state"] or "-"
    if j["exit_code"] not in (None, "") and not j["running"]:
        state += f" (exit code {j['exit_code']})"
    nodes = j["nodes"]
    gpus = int(j["gpus"]) if j["gpus"] else 0
    lines = ["=" * WIDTH, "Job Report (jobpulse)".center(WIDTH).rstrip(), "=" * WIDTH]
    rows = [
        ("Job ID", j["id"]),
        ("Job Name", j["name"] or "-"),
        ("User/Group", f"{j['user'] or '-'}/{j['group'] or '-'}"),
        ("Account", j["account"] or "-"),
        ("Cluster", j["cluster"] or "-"),
        ("Partition", j["partition"] or "-"),
        ("State", state),
        (
            "Nodes",
            f"{len(nodes)} ({', '.join(nodes[:8])}{', ...' if len(nodes) > 8 else ''})" if nodes else "-",
        ),
        ("CPU Cores", f"{j['cores']:g}" if j["cores"] else "-"),
        ("Memory", human_bytes(j["memory_bytes"]) if j["memory_bytes"] else "-"),
        ("GPUs", str(gpus)),
        ("Start Time", _when(j["start"])),
        ("End Time", "running" if j["running"] else _when(j["stop"])),
        ("Run Time", _duration(j["duration_s"])),
    ]
    lines += [f"{k:>14}: {v}" for k, v in rows]
    lines += _title("Overall Utilization", colour)
    o = report.overall
    lines.append(_bar("CPU utilization", o["cpu"], "cpu", colour))
    peaks = [n.mem_peak for n in report.nodes if n.mem_peak is not None]
    mem_instead = f"peak {human_bytes(max(peaks))}, no memory limit" if peaks else "not measured"
    lines.append(_bar("CPU memory usage", o["memory"], "memory", colour, mem_instead))
    if gpus or o["gpu"] is not None:
        lines.append(_bar("GPU utilization", o["gpu"], "gpu", colour))
        peak = j.get("gpu_mem_peak_bytes")
        lines.append(
            _bar(
                "GPU memory usage",
                o["gpu_memory"],
                "memory",
                colour,
                f"peak {human_bytes(peak)}" if peak else "-",
            )
        )
    lines += _title("Detailed Utilization", colour)
    if len(report.nodes) > 16:
        lines += _many_nodes(report.nodes)
    else:
        lines.append("  CPU utilization per node (CPU time used / run time x cores):")
        for n in report.nodes:
            lines.append(f"      {n.node}: {_cpu_detail(n, j['duration_s'])}")
        lines.append("  CPU memory usage per node (peak / limit):")
        for n in report.nodes:
            pct = _pct(n.mem_peak, n.mem_limit)
            lines.append(
                f"      {n.node}: {human_bytes(n.mem_peak)} / {human_bytes(n.mem_limit)}"
                + (f" ({pct:.0f}%)" if pct is not None else "")
            )
        if any(n.gpu_util is not None for n in report.nodes):
            lines.append("  GPU utilization per node (mean):")
            for n in report.nodes:
                lines.append(f"      {n.node}: " + (f"{n.gpu_util:.0f}%" if n.gpu_util is not None else "-"))
    if report.notes:
        lines += _title("Notes", colour)
        for note in report.notes:
            lines += _wrap(f"* {note['hint']}", "  ", "    ")
    return "\n".join(lines) + "\n"


def _cpu_detail(n: NodeFigures, duration: float) -> str:
    used = _duration(n.cpu_seconds) if n.cpu_seconds is not None else "-"
    given = _duration(n.cores * duration) if n.cores else "-"
    eff = f" (efficiency {100 * n.cpu_efficiency:.1f}%)" if n.cpu_efficiency is not None else ""
    return f"{used} / {given}{eff}"


def _many_nodes(nodes: list[NodeFigures]) -> list[str]:
    """A wide job: the spread over nodes, and the least used nodes by name, not a line per node."""
    effs = sorted((n.cpu_efficiency, n.node) for n in nodes if n.cpu_efficiency is not None)
    out = [f"  {len(nodes)} nodes."]
    if effs:
        values = [e for e, _ in effs]
        mid = values[len(values) // 2]
        out.append(
            f"  CPU efficiency over nodes: min {100 * values[0]:.1f}%, median {100 * mid:.1f}%, "
            f"max {100 * values[-1]:.1f}%"
        )
        out.append("  Least used: " + ", ".join(f"{node} ({100 * e:.1f}%)" for e, node in effs[:5]))
    mems = sorted((p, n.node) for n in nodes if (p := _pct(n.mem_peak, n.mem_limit)) is not None)
    if mems:
        out.append(f"  Memory peak over nodes: min {mems[0][0]:.0f}%, max {mems[-1][0]:.0f}% of the limit")
    return out


def _wrap(text: str, first: str, rest: str) -> list[str]:
    words, lines, line = text.split(), [], first
    for word in words:
        if len(line) + len(word) + 1 > WIDTH and line.strip():
            lines.append(line.rstrip())
            line = rest
        line += word + " "
    lines.append(line.rstrip())
    return lines
