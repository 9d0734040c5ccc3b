"""``GET /ui/api/nodes`` (admins): every node the collector has heard from and whether it is up, for the
web interface's Nodes tab. A thin adapter over the node service, which the node watch and ``/metrics``
read too."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from jobpulse.collector.auth.guards import requires
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.services.nodes import NodeService
from jobpulse.collector.settings import CollectorSettings
from litestar import Request, get


@get("/ui/api/nodes", include_in_schema=False, guards=[requires(Role.ADMIN)])
async def web_nodes(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    settings: CollectorSettings = request.app.state.settings
    nodes = await NodeService(request.app.state.store).nodes(settings.node_down_after)
    return [{"node": n.name, **{k: v for k, v in asdict(n).items() if k != "name"}} for n in nodes]
