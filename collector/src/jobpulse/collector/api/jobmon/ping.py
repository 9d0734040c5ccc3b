"""GET /api/ping: liveness, no authentication (seed 004)."""

from __future__ import annotations

import time

from litestar import get


@get(
    "/api/ping",
    operation_id="ping",
    tags=["health"],
    summary="Liveness check; answers the current timestamp",
    opt={"exclude_from_auth": True},
)
async def ping() -> dict[str, float]:
    return {"timestamp": time.time()}
