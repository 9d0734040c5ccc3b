"""The usage history dialect (seed 000): accounting ingest, the dashboard's routes and reports, and
what the real Slurm Usage History clients also call (docs/compat/usage-history.md), over UsageService."""

from __future__ import annotations

from jobpulse.collector.api.usage.controllers import (
    DashboardController,
    ReportsController,
    SamlController,
    UsageIngestController,
)
from litestar.types import ControllerRouterHandler

ROUTES: list[ControllerRouterHandler] = [
    UsageIngestController,
    DashboardController,
    ReportsController,
    SamlController,
]

__all__ = ["ROUTES"]
