"""The dev UI mount: off by default, a bundle folder served at /dev-ui/ with a generated config.

The bundle here is a small stand-in folder; the real one is served and driven in a browser by
tests/frontends/test_dev_ui_browser.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.errors import ConfigError
from app.server.dev_ui.bundle import PINNED_VERSION
from app.server.settings import load_settings
from tests.server.conftest import ClientFactory

INDEX = "<!doctype html><base href='./'><title>Agent Development Kit Dev UI</title>"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A stand-in bundle: index.html, a script, a stylesheet and an asset."""
    folder = tmp_path / "browser"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "main-TEST.js").write_text("console.log('ui')")
    (folder / "styles-TEST.css").write_text("body{}")
    (folder / "assets" / "ADK-512-color.svg").write_text("<svg/>")
    (folder / "assets" / "audio-processor.js").write_text("// worklet")
    return folder


async def test_off_by_default(client: httpx.AsyncClient) -> None:
    for path in ("/dev-ui", "/dev-ui/", "/dev-ui/assets/config/runtime-config.json"):
        assert (await client.get(path)).status_code == 404, path


async def test_serves_the_bundle_with_its_content_types(
    make_client: ClientFactory, bundle: Path
) -> None:
    async with make_client(dev_ui_dir=bundle) as client:
        index = await client.get("/dev-ui/")
        assert index.status_code == 200
        assert index.text == INDEX
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        expected = {
            "/dev-ui/main-TEST.js": "text/javascript; charset=utf-8",
            "/dev-ui/styles-TEST.css": "text/css; charset=utf-8",
            "/dev-ui/assets/ADK-512-color.svg": "image/svg+xml",
            "/dev-ui/assets/audio-processor.js": "text/javascript; charset=utf-8",
            "/dev-ui/index.html": "text/html; charset=utf-8",
        }
        for path, media_type in expected.items():
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == media_type, path


async def test_client_routes_get_the_app_and_missing_files_a_404(
    make_client: ClientFactory, bundle: Path
) -> None:
    async with make_client(dev_ui_dir=bundle) as client:
        for route in ("/dev-ui/agents", "/dev-ui/apps/scripted/sessions/abc"):
            response = await client.get(route)
            assert response.status_code == 200, route
            assert response.text == INDEX
        for missing in ("/dev-ui/chunk-NOPE.js", "/dev-ui/assets/missing.svg"):
            assert (await client.get(missing)).status_code == 404, missing
        escape = await client.get("/dev-ui/..%2F..%2Fetc%2Fpasswd")
        assert escape.status_code in (200, 404)
        assert "root:" not in escape.text


async def test_redirects_to_the_slash(make_client: ClientFactory, bundle: Path) -> None:
    async with make_client(dev_ui_dir=bundle) as client:
        response = await client.get("/dev-ui")
        assert response.status_code == 307
        assert response.headers["location"] == "/dev-ui/"
        with_query = await client.get("/dev-ui?app=scripted")
        assert with_query.headers["location"] == "/dev-ui/?app=scripted"


async def test_runtime_config_points_at_adk_with_an_absolute_url(
    make_client: ClientFactory, bundle: Path
) -> None:
    (bundle / "assets" / "config").mkdir()
    (bundle / "assets" / "config" / "runtime-config.json").write_text('{"backendUrl": ""}')
    async with make_client(dev_ui_dir=bundle) as client:
        response = await client.get("/dev-ui/assets/config/runtime-config.json")
        assert response.status_code == 200
        assert response.json() == {"backendUrl": "http://test/adk"}
        assert response.headers["cache-control"] == "no-store"
        other_host = await client.get(
            "/dev-ui/assets/config/runtime-config.json", headers={"Host": "ui.example:8443"}
        )
        assert other_host.json() == {"backendUrl": "http://ui.example:8443/adk"}


async def test_dev_ui_is_not_in_the_openapi_document(
    make_client: ClientFactory, bundle: Path
) -> None:
    async with make_client(dev_ui_dir=bundle) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith("/dev-ui")]


def test_a_missing_folder_fails_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGENT_SERVICE_DEV_UI_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"AGENT_SERVICE_DEV_UI_DIR .*does not exist"):
        load_settings()
    monkeypatch.setenv("AGENT_SERVICE_DEV_UI_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"AGENT_SERVICE_DEV_UI_DIR .*has no index\.html"):
        load_settings()


def test_the_flag_needs_the_cache_filled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bundle: Path
) -> None:
    monkeypatch.delenv("AGENT_SERVICE_DEV_UI_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AGENT_SERVICE_DEV_UI", "true")
    with pytest.raises(ConfigError, match=r"AGENT_SERVICE_DEV_UI=true .*devui fetch"):
        load_settings()
    cached = tmp_path / "cache" / "agent-service" / "dev-ui" / PINNED_VERSION
    cached.parent.mkdir(parents=True)
    bundle.rename(cached)
    assert load_settings().dev_ui


def test_serve_refuses_to_start_without_the_bundle(tmp_path: Path) -> None:
    agent_service = Path(sys.executable).with_name("agent-service")
    result = subprocess.run(
        [str(agent_service), "serve", "--port", "1"],
        env={"AGENT_SERVICE_DEV_UI_DIR": str(tmp_path / "nowhere"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "AGENT_SERVICE_DEV_UI_DIR" in result.stderr
    assert "Traceback" not in result.stderr


async def test_bundle_requests_are_counted_under_one_route(
    make_client: ClientFactory, bundle: Path
) -> None:
    template = 'route="/dev-ui/{path:path}"'

    def count(metrics: str, status: int) -> float:
        prefix = f'agent_service_http_requests_total{{method="GET",{template},status="{status}"}} '
        lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0

    async with make_client(dev_ui_dir=bundle) as client:
        before = (await client.get("/metrics")).text  # the counters are process-wide
        for path in ("/dev-ui/", "/dev-ui/main-TEST.js", "/dev-ui/agents", "/dev-ui/x.js"):
            await client.get(path)
        after = (await client.get("/metrics")).text
    assert count(after, 200) - count(before, 200) == 3
    assert count(after, 404) - count(before, 404) == 1
    assert "/dev-ui/main-TEST.js" not in after  # never the raw path
