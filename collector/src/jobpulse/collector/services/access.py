"""Who may see what: the one place that says "users see only their own jobs", for every dialect."""

from __future__ import annotations

from jobpulse.collector.domain.errors import NotFound
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.domain.runs import JobRun


def visible_user(principal: Principal) -> str | None:
    """The only user whose jobs ``principal`` may list, or None for every user (admins)."""
    return None if principal.is_admin else principal.username


def may_read(principal: Principal, job: JobRun) -> bool:
    return principal.is_admin or job.user_name == principal.username


def readable_job(principal: Principal, job: JobRun | None, job_id: object) -> JobRun:
    """The job if ``principal`` may read it. Another user's job raises the same NotFound as a missing one,
    so the job ids of other users cannot be probed."""
    if job is None or not may_read(principal, job):
        raise NotFound(f"job {job_id} not found")
    return job
