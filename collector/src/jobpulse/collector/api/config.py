"""GET /api/config and PATCH /api/config/update: the metric catalogue and partitions (admin)."""

from __future__ import annotations

from typing import Any

from jobpulse.collector import metric_catalog
from jobpulse.collector.api.common import interval_label, tick_of
from jobpulse.collector.api.deps import provide_store
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.schemas import ConfigUpdate, Configuration
from jobpulse.collector.store import users
from jobpulse.collector.store.sqlite import SqliteStore
from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.params import JSONBody


class ConfigController(Controller):
    dependencies = {"store": Provide(provide_store, sync_to_thread=False)}
    tags = ["config"]
    guards = [requires(Role.ADMIN)]

    @get("/api/config", operation_id="getConfig", summary="The metric catalogue and partitions")
    async def get_config(
        self, request: Request[Any, Any, Any], store: NamedDependency[SqliteStore]
    ) -> Configuration:
        label = interval_label(tick_of(request))
        return await store.read(lambda db: metric_catalog.load(db, label))

    @patch(
        "/api/config/update",
        operation_id="updateConfig",
        summary="Replace the Metrics and/or Partitions parts of the configuration",
    )
    async def update_config(
        self,
        request: Request[Any, Any, Any],
        store: NamedDependency[SqliteStore],
        data: JSONBody[ConfigUpdate],
    ) -> Configuration:
        actor = principal_of(request).actor
        label = interval_label(tick_of(request))

        def run(db: Any) -> Configuration | str:
            db.execute("BEGIN IMMEDIATE")
            try:
                current = metric_catalog.load(db, label)
                metric_catalog.validate(data.Metrics, data.Partitions, current)
                metric_catalog.save(db, data.Metrics, data.Partitions)
                changed = [k for k in ("Metrics", "Partitions") if getattr(data, k) is not None]
                users.audit(db, actor, "update_config", ",".join(changed), {"parts": changed})
                result = metric_catalog.load(db, label)
                db.execute("COMMIT")
                return result
            except metric_catalog.CatalogError as exc:
                db.execute("ROLLBACK")
                return str(exc)
            except BaseException:
                db.execute("ROLLBACK")
                raise

        result = await store.write(run)
        if isinstance(result, str):
            raise ValidationException(result)
        return result
