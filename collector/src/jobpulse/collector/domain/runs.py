"""The part of the sample store that belongs to one run of a job.

Why: a job number is not unique. Slurm reuses it after a requeue (a second run of the same job), a
second cluster has its own job 7, and a re-installed cluster starts again at 1. Samples are keyed by
job number, node and time only, so every series read is bounded to its run: the run's time window
and the nodes of the run's cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobpulse.collector.domain.jobid import JobId

# Samples taken around a run's edges still belong to it: the prolog's first sample can precede the
# recorded start by the nodes' clock skew, and the epilog's final sample is taken just after the end
# (the hook stamps the end, then the agent reads the cgroup). A requeued run's samples start later
# than the previous run's end plus this edge, which ends where the next run starts in any case.
START_EDGE = 2
EDGE_SECONDS = 10


@dataclass(frozen=True, slots=True)
class RunScope:
    """Which samples are a run's: job number, [start_ms, end_ms) (end None while running), nodes."""

    job_id: int
    start_ms: int
    end_ms: int | None
    nodes: list[str]

    def only(self, wanted: list[str] | None) -> RunScope:
        """The scope narrowed to the nodes a caller asked for (None: all of the run's)."""
        if wanted is None:
            return self
        return RunScope(self.job_id, self.start_ms, self.end_ms, [n for n in self.nodes if n in wanted])

    def within(self, start_ms: int | None = None, end_ms: int | None = None) -> RunScope:
        """The scope narrowed to [start_ms, end_ms) inside the run's own window (None: that end of it)."""
        start = self.start_ms if start_ms is None else max(self.start_ms, start_ms)
        end = self.end_ms
        if end_ms is not None:
            end = end_ms if end is None else min(end, end_ms)
        return RunScope(self.job_id, start, end, self.nodes)


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a job as jobpulse knows it (a row of the job table, decoded): who, where, when, what was
    allocated, how it ended. Every dialect, the web page and the report map this one type; the store is
    the only place that builds it.

    A requeued job, a job number reused by a second cluster or a re-installed one, has several runs:
    ``run_id`` names one. ``nodes`` is the union of what every source reported (hostlists expanded);
    ``exit_code`` is JobMon's number (the code, or 128 + a real signal), ``exit_signal`` Slurm's signal
    (125 marks an OOM kill, see jobs.slurm_exit_string).
    """

    run_id: int
    job_id: int
    start_time: int
    cluster: str = ""
    user_name: str = ""
    user_id: int | None = None
    group_name: str = ""
    group_id: int | None = None
    account: str = ""
    partition: str = ""
    qos: str = ""
    job_name: str = ""
    num_nodes: int | None = None
    num_tasks: int | None = None
    tasks_per_node: int | None = None
    cpus: int | None = None
    gpus_per_node: int | None = None
    mem_requested_bytes: int | None = None
    nodes: tuple[str, ...] = ()
    nodelist: str = ""
    stop_time: int | None = None
    is_running: bool = True
    state: str = "RUNNING"
    exit_code: int | None = None
    exit_signal: int | None = None
    source: str = ""
    updated: float = 0.0
    array_job_id: int | None = None
    array_task_id: int | None = None
    het_job_id: int | None = None
    het_job_offset: int | None = None
    job_script: str | None = None

    @property
    def ref(self) -> JobId:
        """How Slurm names the run: its array task or het component when it is one, else its number."""
        if self.array_job_id is not None and self.array_task_id is not None:
            return JobId(self.array_job_id, array_task=self.array_task_id)
        if self.het_job_id is not None and self.het_job_offset is not None:
            return JobId(self.het_job_id, het_offset=self.het_job_offset)
        return JobId(self.job_id)
