"""Usage: `GET /apps/{app}/users/{uid}/usage`, the user's quota counters."""

from __future__ import annotations

from fastapi import APIRouter

from app.server.deps import AppName, ServicesDep, UserId
from app.server.schemas import ProblemOut, UsageOut

router = APIRouter(tags=["usage"])


@router.get(
    "/apps/{app}/users/{uid}/usage",
    responses={404: {"model": ProblemOut, "description": "Unknown app."}},
)
async def get_usage(app: AppName, uid: UserId, services: ServicesDep) -> UsageOut:
    """Return the user's quota counters: runs in the window, active runs, tokens used.

    Quotas count per user across apps; a quota that is not set is `null`.
    """
    services.runners.app_info(app)  # 404 for an unknown app, as on every app route
    if services.quotas is None:
        return UsageOut(runs=None, active_runs=None, tokens=None)
    return UsageOut.model_validate(await services.quotas.usage(uid))
