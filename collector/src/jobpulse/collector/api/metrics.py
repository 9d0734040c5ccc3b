"""GET /api/metric/{id}: one metric of one job at a chosen aggregation and sample interval."""

from __future__ import annotations

from typing import Annotated, Any

from jobpulse.collector import metric_catalog
from jobpulse.collector.api import jobdata
from jobpulse.collector.api.common import interval_label, load_run, tick_of
from jobpulse.collector.api.deps import provide_store
from jobpulse.collector.auth.guards import requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.schemas import MetricData
from jobpulse.collector.store import series
from jobpulse.collector.store.sqlite import SqliteStore
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.params import PathParameter, QueryParameter


class MetricsController(Controller):
    dependencies = {"store": Provide(provide_store, sync_to_thread=False)}
    tags = ["jobs"]
    guards = [requires(Role.USER)]

    @get("/api/metric/{job_id:str}", operation_id="getMetric", summary="One metric of a job, per node")
    async def get_metric(
        self,
        request: Request[Any, Any, Any],
        store: NamedDependency[SqliteStore],
        job_id: Annotated[str, PathParameter(description="a job number, array task 123_4 or het 123+1")],
        metric: Annotated[
            str,
            QueryParameter(
                name="metric", min_length=1, max_length=128, description="metric GUID (see /api/config)"
            ),
        ],
        aggFn: Annotated[
            str | None,
            QueryParameter(name="aggFn", max_length=16, description="mean (or avg), min, max, sum"),
        ] = None,
        sampleInterval: Annotated[
            float | None,
            QueryParameter(
                name="sampleInterval", gt=0, le=jobdata.MAX_SAMPLE_INTERVAL, description="seconds"
            ),
        ] = None,
        node: Annotated[
            str | None, QueryParameter(name="node", max_length=4096, description="nodes, pipe-separated a|b")
        ] = None,
    ) -> MetricData:
        wanted = [n for n in node.split("|") if n] if node else None
        row, scope = await load_run(request, store, job_id, wanted)
        tick = tick_of(request)
        catalog = await store.read(lambda db: metric_catalog.load_metrics(db, interval_label(tick)))
        config = next((m for m in catalog if metric == m.GUID), None)
        if config is None:
            raise ValidationException(f"metric: unknown metric GUID {metric!r}; see GET /api/config")
        fn = metric_catalog.normalise_agg(aggFn if aggFn is not None else config.AggFn)
        if fn is None:
            raise ValidationException(f"aggFn: {aggFn!r} is not one of mean (avg), min, max, sum")

        def run(db: Any) -> series.Points:
            interval = sampleInterval
            if interval is None:
                measured, _ = series.sampling(db, scope)
                interval = jobdata.sample_intervals(row, measured or tick)[1]
            return series.job_series_points(db, scope, [config.Measurement], interval, fn)

        per_node = (await store.read(run))[config.Measurement]
        shown = metric_catalog.MetricConfig(**{**_fields(config), "AggFn": fn})
        return MetricData(Config=shown, Data={n: jobdata.points(n, p) for n, p in per_node.items()})


def _fields(config: metric_catalog.MetricConfig) -> dict[str, Any]:
    return {f: getattr(config, f) for f in config.__struct_fields__}
