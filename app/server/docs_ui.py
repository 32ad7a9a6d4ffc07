"""`/docs` (Swagger UI) and `/redoc` (ReDoc), with their assets served by us, not a CDN.

The assets are the static files of the `fastapi-offline` package (read through
importlib.resources, nothing else of it is used); the pages are FastAPI's own, pointed at
`/docs/assets/<file>`. The pages and the assets need no credential (security middleware).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
    swagger_ui_default_parameters,
)
from fastapi.responses import HTMLResponse, Response

from app.server.errors import problem

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS_PATH = "/docs/assets"
ASSET_PACKAGE = "fastapi_offline"

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
"""The files served under `/docs/assets/`, with their media types."""

_ASSET_CACHE_CONTROL = "public, max-age=86400"
# validatorUrl null: Swagger UI would otherwise ask validator.swagger.io about the document.
_SWAGGER_PARAMETERS = {**swagger_ui_default_parameters, "validatorUrl": None}


def install_docs(app: FastAPI) -> None:
    """Add `/docs`, `/docs/oauth2-redirect`, `/redoc` and their assets (create the app with
    `docs_url=None, redoc_url=None`)."""

    def asset_url(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI for the OpenAPI document."""
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_js_url=asset_url(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset_url(request, "swagger-ui.css"),
            swagger_favicon_url=asset_url(request, "favicon.png"),
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        """Swagger UI's OAuth2 redirect page."""
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        """ReDoc for the OpenAPI document (system fonts: no Google Fonts)."""
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset_url(request, "redoc.standalone.js"),
            redoc_favicon_url=asset_url(request, "favicon.png"),
            with_google_fonts=False,
        )

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        """One of the docs pages' scripts, stylesheets or icon."""
        media_type = ASSETS.get(name)
        if media_type is None:
            return problem(404, "not_found", f"No docs asset named {name[:80]!r}.")
        return Response(
            asset_bytes(name),
            media_type=media_type,
            headers={"Cache-Control": _ASSET_CACHE_CONTROL},
        )


@cache
def asset_bytes(name: str) -> bytes:
    """The content of one asset of the `fastapi-offline` package (read once)."""
    return resources.files(ASSET_PACKAGE).joinpath("static", name).read_bytes()
