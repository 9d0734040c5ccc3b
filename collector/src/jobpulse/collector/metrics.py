"""``GET /metrics``: Prometheus text format for the collector itself (prometheus_client).

Each app has its own registry (tests build many apps in one process). HTTP
requests are counted by a small ASGI middleware keyed by route template (not
the raw path, so job ids do not explode the label set); node, job and user
counts are read at scrape time (services/nodes.py); ingest counters are fed by
the gRPC servicer's ``on_batches`` hook.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from jobpulse.collector.domain.nodes import Inventory
from jobpulse.collector.services.nodes import NodeService
from jobpulse.proto.v1 import ingest_pb2 as pb
from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "jobpulse_http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "jobpulse_http_request_seconds", "HTTP request duration", ["route"], registry=self.registry
        )
        self.nodes = Gauge("jobpulse_nodes", "Nodes that have reported", registry=self.registry)
        self.nodes_recent = Gauge(
            "jobpulse_nodes_active", "Nodes that reported in the last 5 minutes", registry=self.registry
        )
        self.jobs_running = Gauge("jobpulse_jobs_running", "Jobs not yet ended", registry=self.registry)
        self.jobs = Gauge("jobpulse_jobs", "Jobs known", registry=self.registry)
        self.batches = Counter(
            "jobpulse_ingest_batches", "Batches stored since the collector started", registry=self.registry
        )
        self.samples = Counter(
            "jobpulse_ingest_samples",
            "Samples stored since the collector started, by kind",
            ["kind"],
            registry=self.registry,
        )
        self._job_samples = self.samples.labels("job")
        self._node_samples = self.samples.labels("node")
        self._gpu_samples = self.samples.labels("gpu")
        self.ws_livelog = Gauge(
            "jobpulse_livelog_clients", "Connected livelog clients", registry=self.registry
        )

    def refresh(self, counts: Inventory) -> None:
        """The gauges from :meth:`NodeService.inventory`."""
        self.nodes.set(counts.nodes)
        self.nodes_recent.set(counts.nodes_active)
        self.jobs.set(counts.jobs)
        self.jobs_running.set(counts.jobs_running)

    def observe_batches(self, node: str, batches: Sequence[pb.Batch]) -> None:
        """IngestServicer's hook: called once per agent message with the batches actually stored (not
        replays). Counters are bumped once per message, with label children bound once, because this
        runs on the ingest hot path for every message of every agent."""
        if not batches:
            return
        job = node_n = gpu = 0
        for batch in batches:
            job += len(batch.jobs.job_id)
            node_n += len(batch.node)
            gpu += len(batch.gpus.uuid)
        self.batches.inc(len(batches))
        self._job_samples.inc(job)
        if node_n:
            self._node_samples.inc(node_n)
        if gpu:
            self._gpu_samples.inc(gpu)


class RequestCounter(ASGIMiddleware):
    """Counts every HTTP response by method, route template and status."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: CollectorMetrics) -> None:
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await next_app(scope, receive, counting_send)
        finally:
            handler = scope.get("route_handler")
            paths = getattr(handler, "paths", None)
            route = sorted(paths)[0] if paths else "unmatched"
            self.metrics.http_requests.labels(scope.get("method", ""), route, str(status)).inc()
            self.metrics.http_seconds.labels(route).observe(time.perf_counter() - started)


@get(
    "/metrics",
    operation_id="metrics",
    tags=["ops"],
    opt={"exclude_from_auth": True},
    summary="Prometheus metrics of the collector (text format)",
    media_type=CONTENT_TYPE_LATEST,
)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    metrics: CollectorMetrics = request.app.state.metrics
    metrics.refresh(await NodeService(request.app.state.store).inventory())
    logbuffer = getattr(request.app.state, "logbuffer", None)
    if logbuffer is not None:
        metrics.ws_livelog.set(logbuffer.subscriber_count)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
