"""The API configuration: the metric catalogue and partitions (metric_catalog holds the rules)."""

from __future__ import annotations

import msgspec
from jobpulse.collector import metric_catalog
from jobpulse.collector.domain.principals import Principal
from jobpulse.collector.schemas import Configuration, MetricConfig, PartitionConfig
from jobpulse.collector.store.base import ConfigStore, StoredConfig


class ConfigService:
    def __init__(self, store: ConfigStore) -> None:
        self.store = store

    async def configuration(self, sample_interval: str) -> Configuration:
        """Stored edits over the defaults (``sample_interval``: the defaults' SampleInterval label)."""
        return metric_catalog.configuration_of(await self.store.stored_config(), sample_interval)

    async def metrics(self, sample_interval: str) -> list[MetricConfig]:
        """The metric catalogue alone, sorted by display name."""
        return metric_catalog.metrics_of(await self.store.stored_config(), sample_interval)

    async def update(
        self,
        principal: Principal,
        sample_interval: str,
        metrics: list[MetricConfig] | None,
        partitions: dict[str, PartitionConfig] | None,
    ) -> Configuration:
        """Replace the given parts (None: keep that part), validated against the configuration current
        in the same transaction and audited; raises InvalidInput naming the field (nothing stored)."""
        given = {"metrics": metrics, "partitions": partitions}
        parts = [
            name for name, value in (("Metrics", metrics), ("Partitions", partitions)) if value is not None
        ]

        def change(current: StoredConfig) -> dict[str, str]:
            metric_catalog.validate(
                metrics, partitions, metric_catalog.configuration_of(current, sample_interval)
            )
            return {
                key: msgspec.json.encode(value).decode() for key, value in given.items() if value is not None
            }

        stored = await self.store.update_config(principal.actor, parts, change)
        return metric_catalog.configuration_of(stored, sample_interval)
