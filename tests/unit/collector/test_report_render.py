"""The job report's text for cases the integration test's one small job does not reach: GPUs, an OOM
kill, a wide job, a running job, colours. Pages are shaped as GET /api/job/{id} answers them (the
summary in ``Summary``, its findings with their hints in ``Findings``)."""

from __future__ import annotations

from typing import Any

from jobpulse.collector.report.render import build_report, render_text

GIB = 2**30
T0 = 1_800_000_000


def _meta(**over: Any) -> dict[str, Any]:
    meta = {
        "Id": 42, "JobIdString": "42", "JobName": "train", "UserName": "alice", "GroupName": "lab",
        "Account": "physics", "ClusterId": "hpc", "Partition": "gpu", "State": "COMPLETED", "ExitCode": 0,
        "IsRunning": False, "StartTime": T0, "StopTime": T0 + 3600, "Cpus": 16, "GPUsPerNode": 2,
        "Nodes": [{"Name": "g1"}], "NodeList": "g1",
    }  # fmt: skip
    meta.update(over)
    return meta


def _node(name: str, eff: float, peak: float = 8 * GIB, limit: float = 64 * GIB) -> dict[str, Any]:
    return {
        "node": name, "samples": 360, "cpu_seconds": eff * 16 * 3600, "alloc_cpus": 16, "cpu_efficiency": eff,
        "mem_peak_bytes": peak, "mem_limit_bytes": limit, "gpu_util_mean_percent": 3.0,
        "gpu_util_max_percent": 10.0, "gpu_mem_peak_bytes": 2 * GIB, "io_read_bytes": 0, "io_write_bytes": 0,
        "oom_kills": 0,
    }  # fmt: skip


def _summary(nodes: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    s = {
        "duration_s": 3600, "cpu_efficiency": sum(n["cpu_efficiency"] for n in nodes) / len(nodes),
        "mem_peak_bytes": max(n["mem_peak_bytes"] for n in nodes), "mem_limit_bytes": 64 * GIB,
        "mem_requested_bytes": 64 * GIB, "gpus": 2, "gpu_util_mean_percent": 3.0, "gpu_mem_peak_bytes": 2 * GIB,
        "oom_kills": 0, "nodes": nodes, "gpu_detail": [],
    }  # fmt: skip
    s.update(over)
    return s


def test_gpu_job_has_gpu_bars_and_the_findings_hint() -> None:
    idle = {"rule": "idle_gpu", "value": 3.0, "threshold": 5.0, "hint": "The GPUs were almost idle."}
    page = {"Metadata": _meta(), "Summary": _summary([_node("g1", 0.8)]), "Findings": [idle]}
    text = render_text(build_report(page), colour=False)
    assert "GPUs: 2" in text and "Memory: 64.0 GiB" in text and "Account: physics" in text
    assert "GPU utilization      [||" in text and "  3%]" in text
    assert "GPU memory usage     peak 2.0 GiB" in text  # no total known: the peak, not a made-up share
    assert "* The GPUs were almost idle." in text
    assert "rough guide" not in text and "still running" not in text


def test_oom_kill_gets_a_note_even_without_a_finding() -> None:
    page = {
        "Metadata": _meta(State="OUT_OF_MEMORY"),
        "Summary": _summary([_node("g1", 0.5)], findings=[], oom_kills=1),
    }
    text = render_text(build_report(page), colour=False)
    assert "State: OUT_OF_MEMORY (exit code 0)" in text
    assert "killed a process of this job for using more memory" in text


def test_wide_job_shows_the_spread_and_the_least_used_nodes() -> None:
    nodes = [_node(f"n{i:03d}", 0.9) for i in range(64)]
    nodes[17] = _node("n017", 0.05)
    meta = _meta(Nodes=[{"Name": n["node"]} for n in nodes], NodeList="|".join(n["node"] for n in nodes))
    text = render_text(build_report({"Metadata": meta, "Summary": _summary(nodes)}), colour=False)
    assert "64 nodes." in text and "min 5.0%, median 90.0%, max 90.0%" in text
    assert "Least used: n017 (5.0%)" in text
    assert "n063:" not in text  # no line per node for a wide job
    assert "Nodes: 64 (n000, n001" in text and ", ...)" in text


def test_running_job_is_reported_from_its_samples_and_says_so() -> None:
    points = [{"_time": "", "_value": v} for v in (4.0, 8.0)]
    page = {
        "Metadata": _meta(IsRunning=True, State="RUNNING", StopTime=T0 + 600),
        "Summary": None,
        "MetricData": [
            {"Config": {"GUID": "cpu_cores"}, "Data": {"g1": points}},
            {"Config": {"GUID": "alloc_cpus"}, "Data": {"g1": [{"_value": 16.0}]}},
            {"Config": {"GUID": "mem_peak_bytes"}, "Data": {"g1": [{"_value": 32.0 * GIB}]}},
            {"Config": {"GUID": "mem_limit_bytes"}, "Data": {"g1": [{"_value": 64.0 * GIB}]}},
        ],
    }
    report = build_report(page, now=T0 + 600)
    text = render_text(report, colour=False)
    assert not report.complete and "End Time: running" in text
    assert "CPU utilization      [|||||||||" in text and " 38%]" in text  # 6 of 16 cores
    assert "CPU memory usage     [|||||||||||||||||||||||||" in text and " 50%]" in text
    assert "figures so far" in text


def test_colours_mark_waste_red_and_are_off_on_request() -> None:
    page = {"Metadata": _meta(), "Summary": _summary([_node("g1", 0.1)])}
    coloured = render_text(build_report(page), colour=True)
    assert "\033[31m  CPU utilization" in coloured  # 10 %: red
    assert "\033[" not in render_text(build_report(page), colour=False)
