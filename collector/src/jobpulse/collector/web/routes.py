"""Routes of the web interface: ``/`` sends a browser to it, ``/ui/`` is its page, ``/ui/static/`` its files.

All three are public (the page asks for a login itself); every figure on it comes from the API with the
user's own credentials.
"""

from __future__ import annotations

from pathlib import Path

from jobpulse.collector.web.data import web_job_page
from jobpulse.collector.web.nodes import web_nodes
from jobpulse.collector.web.usage import web_usage
from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGE = STATIC_DIR / "ui" / "index.html"


@get(["/", "/index.html"], include_in_schema=False, opt={"exclude_from_auth": True})
async def root() -> Redirect:
    """A person pointed at the collector gets the web interface, not a JSON 404."""
    return Redirect("/ui/")


@get(["/ui", "/ui/"], include_in_schema=False, opt={"exclude_from_auth": True})
async def page() -> Response[bytes]:
    """The page (read per request: a few KiB; never cached, so an upgrade shows at once)."""
    return Response(
        PAGE.read_bytes(),
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


def static_files() -> Router:
    """The page's script, styles and uPlot."""
    return create_static_files_router(
        path="/ui/static",
        directories=[STATIC_DIR],
        cache_control=CacheControlHeader(no_cache=True),
        include_in_schema=False,
        opt={"exclude_from_auth": True},
    )


ROUTES: list[ControllerRouterHandler] = [root, page, static_files(), web_job_page, web_nodes, web_usage]
