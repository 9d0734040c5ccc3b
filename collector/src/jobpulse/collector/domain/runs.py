"""The part of the sample store that belongs to one run of a job.

Why: a job number is not unique. Slurm reuses it after a requeue (a second run of the same job), a
second cluster has its own job 7, and a re-installed cluster starts again at 1. Samples are keyed by
job number, node and time only, so every series read is bounded to its run: the run's time window
and the nodes of the run's cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

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
