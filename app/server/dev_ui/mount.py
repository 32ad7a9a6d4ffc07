"""Serve the ADK dev UI bundle at `/dev-ui/`, pointed at our `/adk` routes.

Off unless `AGENT_SERVICE_DEV_UI_DIR` (a bundle folder) or `AGENT_SERVICE_DEV_UI=true` (the
cache of the pinned version, filled by `agent-service devui fetch`) is set.
`/dev-ui/assets/config/runtime-config.json` is generated per request: the UI sends its HTTP
calls to `backendUrl` and derives the live WebSocket's host from it, so it must be absolute
(`"/adk"` alone would give `ws:///adk/run_live`).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

MOUNT_PATH = "/dev-ui"
ADK_PREFIX = "/adk"

# Module scripts need a JavaScript type; the system's mime.types may lack or misname some.
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".map": "application/json",
}


def mount_dev_ui(app: FastAPI, directory: Path) -> None:
    """Serve `directory` at `/dev-ui/` with a generated runtime config (not in the OpenAPI)."""
    router = APIRouter(include_in_schema=False)

    @router.get(MOUNT_PATH)
    async def dev_ui_slash(request: Request) -> RedirectResponse:
        """Redirect `/dev-ui` to `/dev-ui/` (relative asset URLs need the slash)."""
        query = request.url.query
        target = request.scope.get("root_path", "") + MOUNT_PATH + "/"
        return RedirectResponse(target + (f"?{query}" if query else ""), 307)

    @router.get(MOUNT_PATH + "/assets/config/runtime-config.json")
    async def runtime_config(request: Request) -> JSONResponse:
        """The dev UI's backend: our `/adk` routes, as an absolute URL of this request's host."""
        base = str(request.base_url).rstrip("/")
        config = {"backendUrl": base + ADK_PREFIX}
        return JSONResponse(config, headers={"Cache-Control": "no-store"})

    app.include_router(router)
    app.mount(MOUNT_PATH, SinglePageFiles(directory=directory), name="dev-ui")


class SinglePageFiles(StaticFiles):
    """Static files; an unknown path without a file extension is a client route: index.html."""

    path = MOUNT_PATH + "/{path:path}"
    """The route template these requests are counted under (HTTP metrics, spans)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=os.fspath(directory), html=True, check_dir=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, labelled with the mount's route template."""
        scope["route"] = self
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        """Serve the file, the folder's index.html, or for a client route the app's index.html."""
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or PurePosixPath(path).suffix:
                raise
            return await super().get_response("index.html", scope)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """Like StaticFiles', with explicit media types for what a bundle holds."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = _MEDIA_TYPES.get(PurePosixPath(os.fspath(full_path)).suffix.lower())
        if media_type is not None and isinstance(response, FileResponse):
            response.headers["content-type"] = media_type
        return response
