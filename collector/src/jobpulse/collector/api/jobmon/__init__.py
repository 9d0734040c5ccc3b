"""The JobMon dialect (seed 004): JobMon's routes, field names and shapes, thin over the services.

Each module parses a request, calls a service and maps the answer to JobMon's shapes; other documented
dialects go beside this package (api/<dialect>/), over the same services. Every request body of the
dialect is read as JobMon's Go backend reads it (``body.GoJSONBody``, the ``dto`` of the dialect's router).
"""

from __future__ import annotations

from jobpulse.collector.api.jobmon.admin import AdminController
from jobpulse.collector.api.jobmon.auth import AuthController
from jobpulse.collector.api.jobmon.body import GoJSONBody
from jobpulse.collector.api.jobmon.config import ConfigController
from jobpulse.collector.api.jobmon.config_users import UserRolesController
from jobpulse.collector.api.jobmon.job_control import JobControlController
from jobpulse.collector.api.jobmon.jobs import JobsController
from jobpulse.collector.api.jobmon.live import live, live_raw
from jobpulse.collector.api.jobmon.livelog import livelog
from jobpulse.collector.api.jobmon.metrics import MetricsController
from jobpulse.collector.api.jobmon.notify import notify_admin
from jobpulse.collector.api.jobmon.oidc import OidcController
from jobpulse.collector.api.jobmon.ping import ping
from jobpulse.collector.api.jobmon.search import SearchController
from jobpulse.collector.api.jobmon.tags import TagsController
from litestar import Router
from litestar.types import ControllerRouterHandler

_HANDLERS: list[ControllerRouterHandler] = [
    ping,
    AuthController,
    JobsController,
    JobControlController,
    AdminController,
    UserRolesController,
    notify_admin,
    livelog,
    OidcController,
    MetricsController,
    ConfigController,
    SearchController,
    TagsController,
    live,
    live_raw,
]

ROUTES: list[ControllerRouterHandler] = [Router("/", route_handlers=_HANDLERS, dto=GoJSONBody)]

__all__ = ["ROUTES"]
