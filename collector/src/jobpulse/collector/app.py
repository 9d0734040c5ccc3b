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
from jobpulse.collector import gctune, httpconf, logbuffer
from jobpulse.collector.api import jobmon, usage
from jobpulse.collector.api.errors import domain_error
from jobpulse.collector.api.jobmon.live import JobMonFrames, JobpulseFrames
from jobpulse.collector.auth.bootstrap import ensure_admin
from jobpulse.collector.auth.oidc import OidcClient
from jobpulse.collector.auth.security import build_auth
from jobpulse.collector.domain.errors import DomainError
from jobpulse.collector.ingest import MAX_MESSAGE_BYTES, IngestServicer, check_ingest_auth
from jobpulse.collector.live import LiveFeed
from jobpulse.collector.metrics import CollectorMetrics, RequestCounter, metrics_endpoint
from jobpulse.collector.nodes import NodeWatch
from jobpulse.collector.scheduler import start_scheduler
from jobpulse.collector.services import reconcile
from jobpulse.collector.services.accounts import AccountService
from jobpulse.collector.services.events import BatchStored, EventBus, publish_stored
from jobpulse.collector.services.jobs import JobService
from jobpulse.collector.services.usage import UsageService
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.errors import StoreUnavailable
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.collector.web import routes as web
from jobpulse.common import statefile
from jobpulse.common.config import ConfigError
from jobpulse.common.validate import InvalidField
from jobpulse.common.version import __version__
from jobpulse.proto.v1 import ingest_pb2 as pb
from jobpulse.proto.v1 import ingest_pb2_grpc as pb_grpc
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger(__name__)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, object]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response({"detail": "internal server error"}, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


def create_app(store: SqliteStore, settings: CollectorSettings) -> Litestar:
    auth = build_auth(settings)
    metrics = CollectorMetrics()
    buffer = logbuffer.LogBuffer(settings.http.livelog_lines)
    bus = EventBus()  # services/events.py
    # one feed per live format, over the same bus: JobMon's protocol and jobpulse's per-sample frames
    live_feed, raw_feed = LiveFeed(bus, JobMonFrames()), LiveFeed(bus, JobpulseFrames())
    app = Litestar(
        route_handlers=[
            *jobmon.ROUTES,
            *usage.ROUTES,
            *web.ROUTES,
            metrics_endpoint,
            httpconf.openapi_json,
            httpconf.docs_assets(),
        ],
        plugins=[live_feed.plugin, raw_feed.plugin],
        on_app_init=[auth.on_app_init],
        on_startup=[httpconf.document_errors],
        on_shutdown=[lambda: logging.getLogger().removeHandler(buffer)],
        # the input guard last: refused input still counts against the rate limits
        middleware=[
            RequestCounter(metrics),
            *httpconf.rate_limits(settings.http),
            httpconf.input_guard(settings.http),
        ],
        compression_config=httpconf.compression(settings.http),
        cors_config=httpconf.cors(settings.http),
        request_max_body_size=settings.http.max_body_bytes,
        openapi_config=httpconf.openapi(__version__),
        exception_handlers={
            HTTPException: httpconf.http_error,
            InvalidField: httpconf.invalid_field,
            StoreUnavailable: httpconf.store_unavailable,
            DomainError: domain_error,
            Exception: _internal_error,
        },
        debug=False,
    )
    app.state.store = store
    app.state.accounts = AccountService(store)
    app.state.settings = settings
    app.state.auth = auth
    app.state.metrics = metrics
    app.state.logbuffer = buffer
    logging.getLogger().addHandler(buffer)  # from now on, so the start-up lines are in the backlog
    app.state.oidc = OidcClient(settings.oidc) if settings.oidc.enabled else None
    app.state.events = bus
    app.state.live = live_feed
    app.state.live_raw = raw_feed
    app.state.usage = UsageService(store)
    app.state.jobs = jobs = JobService(store, settings.default_tick, bus=bus)
    # a late batch of a finished job (an agent replaying its spool) drops its cached series at once
    bus.subscribe(BatchStored, lambda event: jobs.invalidate_jobs(event.job_ids), inline=True)
    return app


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def server_credentials(settings: CollectorSettings) -> grpc.ServerCredentials | None:
    """TLS when tls_cert/tls_key are set; mutual TLS (client certificate required) when tls_ca is."""
    if not (settings.tls_cert or settings.tls_key or settings.tls_ca):
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ConfigError("tls_cert and tls_key must both be set for TLS (tls_ca adds client certificates)")
    try:
        pair = (settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())
        ca = settings.tls_ca.read_bytes() if settings.tls_ca else None
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file: {exc}") from exc
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)


async def serve(settings: CollectorSettings, ready_file: Path | None = None) -> None:
    """Run gRPC ingest and the HTTP API until SIGINT/SIGTERM, in this one event loop."""
    check_ingest_auth(settings)  # before anything is opened: ConfigError names the settings
    store = SqliteStore(settings.database_path)
    store.open()
    await ensure_admin(store, settings)
    app = create_app(store, settings)
    metrics: CollectorMetrics = app.state.metrics
    bus: EventBus = app.state.events  # committed batches -> live feeds, the job data cache
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),  # a second collector must fail, not silently share the port
            # A silently dead agent is noticed within keepalive_time + keepalive_timeout = 40 s.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),  # agents ping every 20 s
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.http2.ping_timeout_ms", 10_000),  # what grpc-core >= 1.6x actually times out on
            # An agent's message is one tick or a replay bundle of at most BUNDLE_BYTES (512 KiB) plus
            # one batch; a larger one is refused (RESOURCE_EXHAUSTED) rather than buffered.
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
    )

    def on_batches(node: str, batches: list[pb.Batch]) -> None:
        metrics.observe_batches(node, batches)
        publish_stored(bus, node, batches)

    servicer = IngestServicer(store, token=settings.token, on_batches=on_batches)
    pb_grpc.add_IngestServicer_to_server(servicer, server)
    credentials = server_credentials(settings)
    if credentials is None:
        grpc_port = server.add_insecure_port(settings.grpc_listen)
    else:
        grpc_port = server.add_secure_port(settings.grpc_listen, credentials)
    if grpc_port == 0:
        raise OSError(f"cannot listen for gRPC on {settings.grpc_listen} (in use?)")
    http_sock = _bind(settings.http_host, settings.http_port)
    http_port = http_sock.getsockname()[1]
    await server.start()
    grpc_host = settings.grpc_listen.rsplit(":", 1)[0]
    log.info(
        "jobpulse collector %s: gRPC on %s:%d (%s, %s), HTTP on http://%s:%d (docs /docs), database %s",
        __version__,
        grpc_host,
        grpc_port,
        "mutual TLS" if settings.tls_ca else "TLS" if credentials is not None else "plaintext",
        "token required" if settings.token else "no token",
        settings.http_host,
        http_port,
        settings.database_path,
    )
    if ready_file is not None:
        statefile.write_atomic(
            ready_file, json.dumps({"grpc_port": grpc_port, "http_port": http_port}), 0o644
        )
    scheduler = start_scheduler(store, settings, bus)
    trusted = settings.http.trusted_proxies
    config = uvicorn.Config(
        app,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        # X-Forwarded-For/-Proto only from the configured proxies; uvicorn's default trusts them from
        # 127.0.0.1, so any local process could pick its client address (and dodge the rate limits).
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted) if trusted else [],
    )
    http = uvicorn.Server(config)
    reconciler = reconcile.start(store, settings, bus)
    watch = asyncio.create_task(NodeWatch(store, settings.node_down_after, bus=bus).run())
    settle = asyncio.create_task(gctune.settle_when_started(http))
    try:
        await http.serve(sockets=[http_sock])
    finally:
        settle.cancel()
        watch.cancel()
        scheduler.shutdown(wait=False)
        if reconciler is not None:
            reconciler.cancel()
        await server.stop(grace=2)
        store.close()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)


def run(settings: CollectorSettings, ready_file: Path | None = None) -> None:
    asyncio.run(serve(settings, ready_file))
