"""The nodes the collector has heard from, and the counts its gauges show."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A node as its agent last reported it, and whether it is up.

    ``state`` is "down" when the agent has been silent (no hello, no batch) for longer than the
    collector's ``down_after``: a connected but stuck agent counts as down too.
    """

    name: str
    cluster: str
    agent_version: str | None
    cpus: int | None
    memory_bytes: int | None
    boot_time: int | None
    first_seen: float  # epoch seconds
    last_seen: float
    silent_seconds: float
    state: str  # "up" | "down"


@dataclass(frozen=True, slots=True)
class Inventory:
    """Counts for the collector's gauges (Prometheus ``/metrics``)."""

    nodes: int
    nodes_active: int  # reported within the active window
    jobs: int
    jobs_running: int
