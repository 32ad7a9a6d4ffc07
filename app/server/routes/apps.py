"""The apps (agent folders) this server serves."""

from __future__ import annotations

from fastapi import APIRouter

from app.server.deps import AppName, Caller, Registry
from app.server.schemas import AppListOut, AppOut, ProblemOut

router = APIRouter(tags=["apps"])


@router.get("/apps", response_model_exclude_none=True)
async def list_apps(registry: Registry, caller: Caller) -> AppListOut:
    """List the apps the caller may use with their agent trees; broken apps carry their error."""
    apps = registry.apps()
    if caller is not None:
        apps = [app for app in apps if caller.may_use_app(app.name)]
    return AppListOut(apps=apps)


@router.get("/apps/{app}", response_model_exclude_none=True, responses={404: {"model": ProblemOut}})
async def get_app(app: AppName, registry: Registry) -> AppOut:
    """Return one app."""
    return registry.app_info(app)
