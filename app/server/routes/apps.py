"""The apps (agent folders) this server serves."""

from __future__ import annotations

from fastapi import APIRouter

from app.server.deps import AppName, Registry
from app.server.schemas import AppListOut, AppOut, ProblemOut

router = APIRouter(tags=["apps"])


@router.get("/apps", response_model_exclude_none=True)
async def list_apps(registry: Registry) -> AppListOut:
    """List every app with its agent tree; apps that failed to load carry their error."""
    return AppListOut(apps=registry.apps())


@router.get("/apps/{app}", response_model_exclude_none=True, responses={404: {"model": ProblemOut}})
async def get_app(app: AppName, registry: Registry) -> AppOut:
    """Return one app."""
    return registry.app_info(app)
