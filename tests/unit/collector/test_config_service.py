"""services/config.py against a real store: defaults, a validated and audited update, and a refused
update that stores nothing (PATCH /api/config/update's HTTP side: test_metric_config_search_tags.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from jobpulse.collector.auth.roles import Principal
from jobpulse.collector.domain.errors import InvalidInput
from jobpulse.collector.domain.nodes import Inventory
from jobpulse.collector.schemas import MetricConfig, PartitionConfig
from jobpulse.collector.services.config import ConfigService
from jobpulse.collector.services.nodes import NodeService
from jobpulse.collector.store.sqlite import SqliteStore
from jobpulse.proto.v1 import ingest_pb2 as pb
from storehelp import db_of

ADMIN = Principal("admin", frozenset({"admin"}), "session", session_id="s1")


@pytest.fixture
async def store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "db.sqlite")
    store.open()
    yield store
    store.close()


async def test_defaults_then_an_audited_update(store: SqliteStore) -> None:
    service = ConfigService(store)
    config = await service.configuration("30s")
    assert len(config.Metrics) == 16 and config.Partitions == {} and config.SampleInterval == "30s"
    cores = next(m for m in config.Metrics if m.GUID == "cpu_cores")
    edited = MetricConfig(
        **{f: getattr(cores, f) for f in cores.__struct_fields__} | {"DisplayName": "Cores"}
    )
    after = await service.update(ADMIN, "30s", [edited], {"gpu": PartitionConfig(Metrics=["cpu_cores"])})
    assert [m.DisplayName for m in after.Metrics] == ["Cores"] and after.Partitions["gpu"].Metrics == [
        "cpu_cores"
    ]
    assert [m.GUID for m in await service.metrics("30s")] == ["cpu_cores"]
    audit = db_of(store).execute("SELECT actor, action, target FROM audit_log").fetchall()
    assert [tuple(r) for r in audit] == [("admin", "update_config", "Metrics,Partitions")]


async def test_a_refused_update_names_the_field_and_stores_nothing(store: SqliteStore) -> None:
    service = ConfigService(store)
    with pytest.raises(InvalidInput) as refused:
        await service.update(ADMIN, "30s", None, {"gpu": PartitionConfig(Metrics=["nope"])})
    assert refused.value.field == "Partitions['gpu'].Metrics" and "nope" in refused.value.reason
    assert (await service.configuration("30s")).Partitions == {}
    assert db_of(store).execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    await service.update(ADMIN, "30s", None, None)  # the writer is usable again


async def test_node_inventory(store: SqliteStore) -> None:
    await store.hello(pb.Hello(node="n1", cluster="c", stream_id="s"))
    counts = await NodeService(store).inventory()
    assert counts == Inventory(nodes=1, nodes_active=1, jobs=0, jobs_running=0)
    assert (await NodeService(store).inventory(now=time.time() + 3600)).nodes_active == 0
    assert [n.state for n in await NodeService(store).nodes(60)] == ["up"]
