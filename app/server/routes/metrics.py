"""`GET /metrics`: the Prometheus text format (all worker processes' values)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from starlette.responses import Response

from app.errors import NotFoundError
from app.observability import metrics
from app.server.deps import ServicesDep

router = APIRouter(tags=["operations"])


class MetricsOffError(NotFoundError):
    """Metrics are off, or served on their own port."""

    code = "not_found"


@router.get("/metrics", include_in_schema=False)
async def get_metrics(services: ServicesDep) -> Response:
    """Return the metrics, unless they are off or on `AGENT_SERVICE_METRICS_PORT`."""
    settings = services.settings
    if not settings.metrics or settings.metrics_port is not None:
        raise MetricsOffError("Not Found")
    # In multiprocess mode this reads every worker's files: keep it off the event loop.
    body = await anyio.to_thread.run_sync(metrics.render)
    return Response(body, media_type=metrics.CONTENT_TYPE)
