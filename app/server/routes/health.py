"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter

from app.server.deps import ServicesDep
from app.server.schemas import HealthOut, ProblemOut

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> HealthOut:
    """Answer while the process is alive."""
    return HealthOut(status="ok")


@router.get("/readyz", responses={503: {"model": ProblemOut}})
async def readyz(services: ServicesDep) -> HealthOut:
    """Answer 200 when the schema is at the migration head and every table answers."""
    await services.check_ready()
    return HealthOut(status="ok")
