"""Efficiency findings: configurable rules over a job summary, each with a threshold and a hint.

A rule that fires becomes a tag on the job (type ``finding``, created by ``jobpulse``) and a note in its
summary with the measured value and the threshold, so a user sees both what was wrong and by how much.
Thresholds are collector settings (``finding_*``, see README "Storage").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobpulse.collector.domain.jobs import FINDING_CREATED_BY as FINDING_CREATED_BY
from jobpulse.collector.domain.jobs import FINDING_TAG_TYPE as FINDING_TAG_TYPE
from jobpulse.collector.domain.summaries import Finding as Finding  # one rule that fired

if TYPE_CHECKING:
    from jobpulse.collector.settings import CollectorSettings
    from jobpulse.collector.summary import JobSummary


@dataclass(frozen=True)
class Thresholds:
    min_duration_s: float = 300.0
    gpu_idle_percent: float = 5.0
    cpu_efficiency_min: float = 0.25
    mem_used_fraction_min: float = 0.25
    mem_near_limit_fraction: float = 0.95
    short_job_s: float = 300.0
    many_nodes: int = 8

    @classmethod
    def from_settings(cls, s: CollectorSettings) -> Thresholds:
        return cls(
            s.finding_min_duration,
            s.finding_gpu_idle_percent,
            s.finding_cpu_efficiency_min,
            s.finding_mem_used_fraction_min,
            s.finding_mem_near_limit_fraction,
            s.finding_short_job,
            s.finding_many_nodes,
        )


def evaluate(summary: JobSummary, t: Thresholds) -> list[Finding]:
    """Every rule that fires for ``summary``. Efficiency rules need ``min_duration_s`` of runtime."""
    out: list[Finding] = []
    long_enough = summary.duration_s >= t.min_duration_s
    if long_enough and summary.gpus:
        idle = [
            g
            for g in summary.gpu_detail
            if g.util_mean_percent is not None and g.util_mean_percent < t.gpu_idle_percent
        ]
        if idle:
            worst = min(g.util_mean_percent or 0.0 for g in idle)
            out.append(
                Finding(
                    "idle_gpu",
                    worst,
                    t.gpu_idle_percent,
                    f"{len(idle)} of {summary.gpus} GPUs averaged under {t.gpu_idle_percent:g}% utilization:"
                    " request fewer GPUs or check that the code uses them",
                )
            )
        elif (
            not summary.gpu_detail
            and summary.gpu_util_mean_percent is not None
            and summary.gpu_util_mean_percent < t.gpu_idle_percent
        ):
            out.append(
                Finding(
                    "idle_gpu",
                    summary.gpu_util_mean_percent,
                    t.gpu_idle_percent,
                    "the job's GPUs were nearly idle: request fewer GPUs or check that the code uses them",
                )
            )
    if long_enough and summary.cpu_efficiency is not None and summary.cpu_efficiency < t.cpu_efficiency_min:
        out.append(
            Finding(
                "low_cpu_efficiency",
                summary.cpu_efficiency,
                t.cpu_efficiency_min,
                "the job used a small share of its allocated cores: request fewer CPUs",
            )
        )
    peak, requested, limit = summary.mem_peak_bytes, summary.mem_requested_bytes, summary.mem_limit_bytes
    if long_enough and peak is not None and requested and peak / requested < t.mem_used_fraction_min:
        out.append(
            Finding(
                "memory_underused",
                peak / requested,
                t.mem_used_fraction_min,
                "peak memory stayed far below the request: request less memory so other jobs fit",
            )
        )
    if summary.oom_kills:
        out.append(
            Finding(
                "oom_killed", summary.oom_kills, 0, "processes were killed for lack of memory: request more"
            )
        )
    elif peak is not None and limit and peak / limit >= t.mem_near_limit_fraction:
        out.append(
            Finding(
                "memory_near_limit",
                peak / limit,
                t.mem_near_limit_fraction,
                "peak memory came close to the limit: request more memory to avoid OOM kills",
            )
        )
    if summary.duration_s < t.short_job_s and summary.num_nodes >= t.many_nodes:
        out.append(
            Finding(
                "short_many_nodes",
                summary.duration_s,
                t.short_job_s,
                f"a {summary.duration_s:.0f} s job on {summary.num_nodes} nodes: startup dominates, use fewer nodes",
            )
        )
    return out
