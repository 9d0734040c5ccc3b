"""Garbage-collector settings for the collector's long-lived process.

Ingest allocates a tuple per sample row (tens of thousands per group commit;
they are freed once staged, see store/stage.py). With CPython's default
thresholds (700, 10, 10) that triggers a young collection every few hundred
rows and, every few seconds, a full collection that walks every object the
process owns: Litestar, grpc and the imported modules included (about 75 ms
each, during which the event loop stands still). Measured in bench/ingest.py,
that was about a tenth of the collector's CPU.

``settle`` runs once the HTTP server has started (the gRPC server, the store
and Litestar's start-up hooks are up by then): it moves everything alive into
the permanent generation (``gc.freeze``, which collections skip), and raises
the young threshold so that collections run per group of batches rather than
per batch. Cycles made later are still collected; a frozen object that becomes
cyclic garbage later is never freed, which for start-up objects (kept for the
process's life anyway) costs nothing.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Protocol

# Young collections every YOUNG container allocations (CPython's default: 700); the older generations keep
# CPython's ratios (10, 10). Measured in bench/ingest.py (bundles of 64): time in the collector's GC
# 2.0 s -> 1.3 s per run, full collections 83 ms -> 39 ms each and 13 -> 3 of them.
YOUNG = 10_000


def settle() -> None:
    """Freeze what start-up built and raise the young threshold (see the module's docstring)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG, older, oldest)


class _Server(Protocol):
    started: bool


async def settle_when_started(server: _Server) -> None:
    """``settle`` as soon as ``server`` (uvicorn's) reports it has started."""
    while not server.started:
        await asyncio.sleep(0.05)
    settle()
