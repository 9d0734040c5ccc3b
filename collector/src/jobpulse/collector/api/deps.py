"""Dependency providers shared by route modules."""

from __future__ import annotations

from jobpulse.collector.services.jobs import JobService
from litestar.datastructures import State


def provide_job_service(state: State) -> JobService:
    """The app's job service (``app.state.jobs``, built in ``app.create_app``)."""
    jobs: JobService = state.jobs
    return jobs
