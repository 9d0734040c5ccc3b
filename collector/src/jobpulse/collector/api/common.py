"""Helpers shared by the job-data routes: query parsing with 400s that name the parameter."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from jobpulse.collector.domain.jobid import JobId
from jobpulse.collector.services.series import interval_label as interval_label
from jobpulse.collector.settings import CollectorSettings
from jobpulse.common.validate import InvalidField
from litestar import Request
from litestar.exceptions import ValidationException

Bounds = tuple[int | None, int | None]
INT64 = 2**63 - 1  # SQLite's INTEGER range: larger values are refused as 400, never overflow to 500


def parse_range(name: str, value: str | None) -> Bounds | None:
    """JobMon's range filter "from,to" (either side may be empty); 400 naming ``name`` otherwise."""
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) != 2:
        raise ValidationException(f"{name}: expected 'from,to' (either may be empty), got {value!r}")
    try:
        low, high = (int(p) if p.strip() else None for p in parts)
        if any(b is not None and abs(b) > INT64 for b in (low, high)):
            raise ValueError
    except ValueError:
        raise ValidationException(f"{name}: bounds must be integers, got {value!r}") from None
    return low, high


def parse_list(name: str, value: str | None, kind: type[int] | type[str] = str) -> list[Any]:
    if not value:
        return []
    try:
        items = [kind(v.strip()) for v in value.split(",") if v.strip()]
        if any(isinstance(v, int) and abs(v) > INT64 for v in items):
            raise ValueError
        return items
    except ValueError:
        raise ValidationException(
            f"{name}: expected comma-separated {kind.__name__}s, got {value!r}"
        ) from None


def parse_job_ref(text: str, field: str = "id") -> JobId:
    """A job id from a path or query (``123``, ``123_4``, ``123+1``); anything else a 400 naming ``field``."""
    try:
        return JobId.parse(text, field)
    except InvalidField as exc:
        raise ValidationException(str(exc), extra=[{"key": field, "message": exc.reason}]) from None


def tick_of(request: Request[Any, Any, Any]) -> float:
    settings: CollectorSettings = request.app.state.settings
    return settings.default_tick


def same_site_target(request: Request[Any, Any, Any], target: str | None) -> str:
    """``target`` when it is on this site (a path here, this host, or a configured CORS origin: the
    dashboard's own page), else "/": the login never sends a browser to another site."""
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    if target.startswith("/") and not target.startswith("//"):
        return target
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "/"
    settings: CollectorSettings = request.app.state.settings
    origin = f"{parts.scheme}://{parts.netloc}"
    if parts.hostname == request.url.hostname or origin in settings.http.cors_origins:
        return target
    return "/"
