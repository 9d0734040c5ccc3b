"""Assembly: the Litestar app, and the one asyncio process that also runs the gRPC server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import grpc
import uvicorn
from jobpulse.collector.api.auth import AuthController
from jobpulse.collector.api.config import ConfigController
from jobpulse.collector.api.jobcache import JobDataCache
from jobpulse.collector.api.jobs import JobsController
from jobpulse.collector.api.live import live
from jobpulse.collector.api.metrics import MetricsController
from jobpulse.collector.api.ping import ping
from jobpulse.collector.api.search import SearchController
from jobpulse.collector.api.tags import TagsController
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.auth.security import build_auth
from jobpulse.collector.ingest import IngestServicer
from jobpulse.collector.live import LiveFeed
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.common.version import __version__
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger(__name__)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, object]]:
    """Uniform error body {"detail": ...}; validation errors keep their per-field extra."""
    body: dict[str, object] = {"detail": exc.detail, "status_code": exc.status_code}
    if getattr(exc, "extra", None):
        body["errors"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response({"detail": "internal server error"}, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


def create_app(
    store: SqliteStore, settings: CollectorSettings, live_feed: LiveFeed | None = None
) -> Litestar:
    auth = build_auth(settings)
    live_feed = live_feed or LiveFeed()
    app = Litestar(
        route_handlers=[
            ping,
            AuthController,
            JobsController,
            MetricsController,
            ConfigController,
            SearchController,
            TagsController,
            live,
        ],
        plugins=[live_feed.plugin],
        on_app_init=[auth.on_app_init],
        openapi_config=OpenAPIConfig(
            title="jobpulse",
            version=__version__,
            description="Per-job resource monitoring for Slurm clusters",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin(path="/"), ScalarRenderPlugin(path="/scalar")],
        ),
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        debug=False,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.auth = auth
    app.state.live = live_feed
    app.state.job_cache = JobDataCache()
    live_feed.job_listeners.append(app.state.job_cache.invalidate_jobs)
    return app


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve(settings: CollectorSettings, ready_file: Path | None = None) -> None:
    """Run gRPC ingest and the HTTP API until SIGINT/SIGTERM, in this one event loop."""
    store = SqliteStore(settings.database_path)
    store.open()
    ensure_admin(store.writer, settings)
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),  # a second collector must fail, not silently share the port
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    )
    live_feed = LiveFeed()  # committed batches -> WS /api/live/{id} subscribers
    pb_grpc.add_IngestServicer_to_server(
        IngestServicer(store, token=settings.token, on_batch=live_feed.on_batch), server
    )
    grpc_port = server.add_insecure_port(settings.grpc_listen)
    if grpc_port == 0:
        raise OSError(f"cannot listen for gRPC on {settings.grpc_listen} (in use?)")
    http_sock = _bind(settings.http_host, settings.http_port)
    http_port = http_sock.getsockname()[1]
    await server.start()
    grpc_host = settings.grpc_listen.rsplit(":", 1)[0]
    log.info(
        "jobpulse collector %s: gRPC on %s:%d, HTTP on http://%s:%d (docs /docs), database %s",
        __version__,
        grpc_host,
        grpc_port,
        settings.http_host,
        http_port,
        settings.database_path,
    )
    if ready_file is not None:
        ready_file.write_text(json.dumps({"grpc_port": grpc_port, "http_port": http_port}))
    app = create_app(store, settings, live_feed)
    config = uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False, lifespan="on")
    http = uvicorn.Server(config)
    try:
        await http.serve(sockets=[http_sock])
    finally:
        await server.stop(grace=2)
        store.close()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)


def run(settings: CollectorSettings, ready_file: Path | None = None) -> None:
    asyncio.run(serve(settings, ready_file))
