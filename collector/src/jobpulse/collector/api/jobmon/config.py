"""GET /api/config and PATCH /api/config/update: the metric catalogue and partitions (admin)."""

from __future__ import annotations

from typing import Any

from jobpulse.collector.api.common import interval_label, tick_of
from jobpulse.collector.auth.guards import principal_of, requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.schemas import ConfigUpdate, Configuration
from jobpulse.collector.services.config import ConfigService
from litestar import Controller, Request, get, patch
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody


def provide_config(state: State) -> ConfigService:
    return ConfigService(state.store)


class ConfigController(Controller):
    dependencies = {"config": Provide(provide_config, sync_to_thread=False)}
    tags = ["config"]
    guards = [requires(Role.ADMIN)]

    @get("/api/config", operation_id="getConfig", summary="The metric catalogue and partitions")
    async def get_config(
        self, request: Request[Any, Any, Any], config: NamedDependency[ConfigService]
    ) -> Configuration:
        return await config.configuration(interval_label(tick_of(request)))

    @patch(
        "/api/config/update",
        operation_id="updateConfig",
        summary="Replace the Metrics and/or Partitions parts of the configuration",
    )
    async def update_config(
        self,
        request: Request[Any, Any, Any],
        config: NamedDependency[ConfigService],
        data: JSONBody[ConfigUpdate],
    ) -> Configuration:
        return await config.update(
            principal_of(request), interval_label(tick_of(request)), data.Metrics, data.Partitions
        )
