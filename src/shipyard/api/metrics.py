"""Prometheus exposition at /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from shipyard.api.deps import DbSession, require
from shipyard.metrics.prometheus import exposition

router = APIRouter(tags=["metrics"])


@router.get("/metrics", operation_id="metrics", response_class=Response)
async def metrics(request: Request, session: DbSession) -> Response:
    """Prometheus metrics: requests and latency by route, process figures."""
    if not request.app.state.ctx.settings.metrics_public:
        await require("read")(request, session)
    body, content_type = exposition()
    return Response(body, media_type=content_type)
