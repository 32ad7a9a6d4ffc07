"""`/docs` and `/redoc` work offline: their pages name no other host, and we serve the assets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.server.conftest import ClientFactory

SECRET = "s" * 40
# Every URL-looking reference in the pages: src=, href=, url(...), and string literals.
_URLS = re.compile(
    r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)|["'](\w+://[^"']+)["']"""
)
_ASSETS = {
    "/docs": {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"},
    "/redoc": {"redoc.standalone.js": "text/javascript"},
}


@pytest.fixture
async def authed(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The app with JWT auth on: the docs must still open without a credential."""
    async with make_client(auth="jwt", jwt_secret=SECRET) as c:
        yield c


def referenced(html: str) -> list[str]:
    """Every URL the page refers to."""
    return [next(g for g in match.groups() if g) for match in _URLS.finditer(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_everything_from_this_server(
    authed: httpx.AsyncClient, page: str
) -> None:
    response = await authed.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = referenced(response.text)
    assert urls, response.text
    external = [u for u in urls if re.match(r"^(\w+:)?//", u)]
    assert external == [], f"{page} loads from other hosts: {external}"
    assert "/openapi.json" in response.text
    assets = [u for u in urls if u.startswith("/docs/assets/")]
    expected = {f"/docs/assets/{name}" for name in _ASSETS[page]} | {"/docs/assets/favicon.png"}
    assert set(assets) == expected
    for url in assets:  # no credential: the assets are as open as the pages
        asset = await authed.get(url)
        assert asset.status_code == 200, url
        name = url.rsplit("/", 1)[1]
        media = _ASSETS[page].get(name, "image/png")
        assert asset.headers["content-type"].split(";")[0] == media, url
        assert len(asset.content) > 1000, url


async def test_swagger_bundle_is_the_real_swagger_ui(authed: httpx.AsyncClient) -> None:
    bundle = await authed.get("/docs/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    redoc = await authed.get("/docs/assets/redoc.standalone.js")
    assert b"Redoc" in redoc.content


async def test_unknown_docs_asset_is_a_problem_404(authed: httpx.AsyncClient) -> None:
    for path in ("/docs/assets/nope.js", "/docs/assets/..%2Fconsts.py", "/docs/assets/__init__.py"):
        response = await authed.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


async def test_other_routes_still_need_a_credential(authed: httpx.AsyncClient) -> None:
    assert (await authed.get("/apps")).status_code == 401
    assert (await authed.get("/docsx")).status_code == 401
