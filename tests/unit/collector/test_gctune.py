"""The collector's GC settings are applied once its HTTP server has started, not before."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from jobpulse.collector import gctune


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class FakeServer:
    started = False


async def test_settles_only_after_the_server_started(restored_gc: None) -> None:
    server = FakeServer()
    gc.unfreeze()
    task = asyncio.create_task(gctune.settle_when_started(server))
    await asyncio.sleep(0.2)
    assert not task.done() and gc.get_freeze_count() == 0 and gc.get_threshold()[0] != gctune.YOUNG
    server.started = True
    await asyncio.wait_for(task, 2)
    assert gc.get_freeze_count() > 0  # start-up objects are out of the collector's reach
    assert gc.get_threshold()[0] == gctune.YOUNG
