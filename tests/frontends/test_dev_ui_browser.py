"""The ADK dev UI in a real browser, against a real `agent-service serve`.

`agent-service devui fetch` fills the cache from PyPI (the real google-adk wheel; CI reaches
PyPI), the server mounts it with `AGENT_SERVICE_DEV_UI=true` (the README's two commands), and
headless Debian Chromium, driven by Playwright with `executable_path`, uses the page as a
person would: it picks the app, chats through `/adk/run_sse`, and calls the agent through
`/adk/run_live` with a fake microphone that plays a WAV written here. The agent's model
(tests/frontends/agents/voice) says what it received, so the test checks the server side
(stored events, metrics) as well as the page. Every request to another host is refused, so
nothing reaches the internet (the page's web fonts fail, harmlessly). Screenshots are saved
under the test's tmp_path and their paths printed.

A missing Chromium or a failed fetch is a failure that says what to do, never a skip.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    BrowserContext,
    Page,
    Playwright,
    Request,
    Route,
    WebSocket,
    sync_playwright,
)

from tests.conftest import create_database, drop_database, run_async
from tests.e2e.conftest import ServerProcess, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
AGENT_SERVICE = Path(sys.executable).with_name("agent-service")
AGENTS = Path(__file__).resolve().parent / "agents"
APP = "voice"
USER = "user"  # the dev UI's default user id
PAGE_TIMEOUT_MS = 45_000
FETCH_TIMEOUT_SECONDS = 240
MIC_RATE = 16_000
MIC_SECONDS = 4
MIC_AMPLITUDE = 12_000
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
# Cosmetic requests the pages make to other hosts, refused here (nothing reaches the internet)
# and harmless offline: the dev UI's web fonts (icons then show as their ligature names), and
# ReDoc's "by Redocly" logo, an <img> that removes itself when it fails to load.
DEV_UI_FONT_HOSTS = ("https://fonts.googleapis.com/", "https://fonts.gstatic.com/")
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_HEARD = re.compile(
    r"I heard (?P<chunks>\d+) chunks of (?P<mime>[^,]+), (?P<bytes>\d+) bytes, peak (?P<peak>\d+)\."
)


@pytest.fixture(scope="module")
def dev_ui_cache() -> Path:
    """Run `agent-service devui fetch` (downloads once, then reuses the cache); its folder."""
    result = subprocess.run(
        [str(AGENT_SERVICE), "devui", "fetch"],
        capture_output=True,
        text=True,
        timeout=FETCH_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            "`agent-service devui fetch` failed; it downloads the google-adk wheel from PyPI, "
            f"which this test needs (exit {result.returncode}):\n{result.stderr}"
        )
    folder = Path(result.stdout.strip())
    print(f"dev UI bundle: {folder} ({result.stderr.strip()})")
    assert (folder / "index.html").is_file(), folder
    return folder


@pytest.fixture(scope="module")
def server(
    postgres_url: str,
    pg_template: str,
    dev_ui_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """`agent-service serve` with the voice agent and the dev UI from the default cache.

    One server for the module (each test opens its own browser profile and session): start-up
    dominates these tests on a busy machine.
    """
    name = f"t_devui_{uuid.uuid4().hex[:12]}"
    url = run_async(lambda: create_database(postgres_url, name, template=pg_template))
    try:
        with running_server(
            url,
            tmp_path_factory.mktemp("dev-ui-server"),
            AGENT_SERVICE_AGENTS_DIR=str(AGENTS),
            AGENT_SERVICE_DEV_UI="true",
        ) as running:
            yield running
    finally:
        run_async(lambda: drop_database(postgres_url, name))


@dataclass
class Traffic:
    """What the page sent and received, recorded from the browser's side."""

    base_url: str
    requests: list[Request] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    sockets: list[WebSocket] = field(default_factory=list)
    frames_sent: list[dict[str, Any]] = field(default_factory=list)

    def route(self, route: Route) -> None:
        """Let requests to the server through; refuse every other host."""
        if route.request.url.startswith(self.base_url):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def on_request(self, request: Request) -> None:
        self.requests.append(request)

    def on_websocket(self, socket: WebSocket) -> None:
        self.sockets.append(socket)
        socket.on("framesent", self._on_frame_sent)

    def _on_frame_sent(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.frames_sent.append(json.loads(payload))

    def posts(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies the page POSTed to `path`."""
        return [
            json.loads(r.post_data or "{}")
            for r in self.requests
            if r.method == "POST" and r.url.split("?")[0] == self.base_url + path
        ]


def require_chromium() -> str:
    """Debian's Chromium, or a failure that says how to install it."""
    if not os.access(CHROMIUM, os.X_OK):
        found = shutil.which("chromium")
        if found is None:
            pytest.fail(
                f"Chromium is not installed at {CHROMIUM}: `apt-get install -y chromium` "
                "(Playwright drives it with executable_path; it never downloads a browser)"
            )
        return found
    return CHROMIUM


@pytest.fixture
def microphone(tmp_path: Path) -> Path:
    """A WAV for the fake microphone: 16 kHz mono PCM16, a 440 Hz tone in half-second beeps."""
    path = tmp_path / "microphone.wav"
    samples = bytearray()
    for i in range(MIC_RATE * MIC_SECONDS):
        on = (i // (MIC_RATE // 2)) % 2 == 0
        value = MIC_AMPLITUDE * math.sin(2 * math.pi * 440 * i / MIC_RATE) if on else 0.0
        samples += struct.pack("<h", round(value))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(MIC_RATE)
        out.writeframes(bytes(samples))
    return path


@pytest.fixture
def playwright() -> Iterator[Playwright]:
    """The Playwright driver (its own Node process; no browser download)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(
    playwright: Playwright, server: ServerProcess, tmp_path: Path, microphone: Path
) -> Iterator[tuple[BrowserContext, Traffic]]:
    """Headless Chromium on a new profile, with the fake microphone, confined to the server."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=require_chromium(),
        headless=True,
        args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={microphone}"],
        viewport={"width": 1280, "height": 800},
    )
    try:
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        context.grant_permissions(["microphone"], origin=server.base_url)
        # The dev UI streams token by token (`streaming: true`) only with this key set.
        context.add_init_script("window.localStorage.setItem('adk-use-sse', 'true')")
        traffic = Traffic(server.base_url)
        context.route("**/*", traffic.route)
        context.on("request", traffic.on_request)
        context.on("page", lambda page: page.on("websocket", traffic.on_websocket))
        yield context, traffic
    finally:
        context.close()


def open_dev_ui(context: BrowserContext, server: ServerProcess) -> Page:
    """Load the dev UI with the voice app picked (`?app=`), through the `/dev-ui` redirect."""
    page = context.new_page()
    page.goto(f"{server.base_url}/dev-ui?app={APP}")
    assert page.url == f"{server.base_url}/dev-ui/?app={APP}"
    page.wait_for_function("() => window.runtimeConfig !== undefined")
    config = page.evaluate("() => window.runtimeConfig")
    assert config == {"backendUrl": server.base_url + "/adk"}  # generated by the server
    page.get_by_text(APP, exact=True).first.wait_for()  # the app selector, from /adk/list-apps
    page.locator("textarea").wait_for()
    return page


def screenshot(page: Page, tmp_path: Path, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot and print where."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def session_events(server: ServerProcess, session_id: str) -> list[dict[str, Any]]:
    """The stored events of the dev UI's session, through the ADK-compatible API."""
    response = httpx.get(
        f"{server.base_url}/adk/apps/{APP}/users/{USER}/sessions/{session_id}", timeout=20
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def metric(server: ServerProcess, name: str, **labels: str) -> float:
    """One sample of the server's /metrics (0 when absent)."""
    text = httpx.get(server.base_url + "/metrics", timeout=20).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", re.MULTILINE)
    match = pattern.search(text)
    return float(match.group(1)) if match else 0.0


def test_dev_ui_chats_through_run_sse(
    server: ServerProcess, browser: tuple[BrowserContext, Traffic], tmp_path: Path
) -> None:
    context, traffic = browser
    page = open_dev_ui(context, server)

    page.locator("textarea").fill("hello from the browser")
    with page.expect_response(lambda r: r.url == server.base_url + "/adk/run_sse") as answered:
        page.locator("button:has-text('send')").click()
    reply = page.get_by_text("You said: hello from the browser")
    reply.wait_for()
    shot = screenshot(page, tmp_path, "dev-ui-chat")

    response = answered.value
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    [body] = traffic.posts("/adk/run_sse")
    assert body["appName"] == APP
    assert body["userId"] == USER
    assert body["streaming"] is True
    assert body["newMessage"]["parts"] == [{"text": "hello from the browser"}]
    [created] = traffic.posts(f"/adk/apps/{APP}/users/{USER}/sessions")
    assert created["state"]["__session_metadata__"]["displayName"]  # the reference's shape

    texts = [
        (e["author"], part["text"])
        for e in session_events(server, body["sessionId"])
        for part in (e.get("content") or {}).get("parts", [])
        if "text" in part
    ]
    assert texts == [("user", "hello from the browser"), ("voice_agent", reply.inner_text())]
    assert not [u for u in traffic.refused if not u.startswith(DEV_UI_FONT_HOSTS)]
    assert shot.stat().st_size > 10_000


def test_dev_ui_live_call_with_a_fake_microphone(
    server: ServerProcess, browser: tuple[BrowserContext, Traffic], tmp_path: Path
) -> None:
    context, traffic = browser
    page = open_dev_ui(context, server)
    chunks_before = metric(server, "agent_service_live_audio_chunks_total", direction="in")

    with page.expect_websocket(lambda ws: "/adk/run_live?" in ws.url) as opened:
        page.locator("button:has-text('call')").click()
    socket = opened.value
    heard = page.get_by_text(re.compile(r"I heard \d+ chunks of ")).first
    heard.wait_for()
    page.get_by_text(re.compile(r"\(\d+ bytes heard\)")).first.wait_for()
    shot = screenshot(page, tmp_path, "dev-ui-live-call")
    with socket.expect_event("close"):
        page.locator("button:has-text('call_end')").click()
    screenshot(page, tmp_path, "dev-ui-after-call")

    # What the browser sent: the dev UI's audio frames, 16 kHz PCM16 in standard base64.
    query = dict(p.split("=", 1) for p in socket.url.split("?", 1)[1].split("&"))
    assert query["app_name"] == APP and query["user_id"] == USER
    assert query["modalities"] == "AUDIO"
    blobs = [frame["blob"] for frame in traffic.frames_sent if "blob" in frame]
    assert blobs, traffic.frames_sent[:3]
    assert {blob["mime_type"] for blob in blobs} == {"audio/pcm;rate=16000"}
    sent = [base64.b64decode(blob["data"], validate=True) for blob in blobs]
    assert all(len(chunk) % 2 == 0 and chunk for chunk in sent)

    # What the server received: the model says it, from the blobs the server relayed.
    said = _HEARD.search(heard.inner_text())
    assert said is not None
    assert said["mime"] == "audio/pcm;rate=16000"
    assert int(said["peak"]) > 0, "the model heard only silence"
    assert int(said["bytes"]) <= sum(len(chunk) for chunk in sent)
    relayed = metric(server, "agent_service_live_audio_chunks_total", direction="in")
    assert int(said["chunks"]) <= relayed - chunks_before <= len(blobs)

    # What was stored: the user's transcribed turn and the agent's spoken answer.
    events = session_events(server, query["session_id"])
    inputs = [e["inputTranscription"]["text"] for e in events if "inputTranscription" in e]
    outputs = [e["outputTranscription"]["text"] for e in events if "outputTranscription" in e]
    assert inputs and all(re.fullmatch(r"\(\d+ bytes heard\)", text) for text in inputs)
    assert outputs and all(_HEARD.fullmatch(text) for text in outputs)
    assert said.group(0) in outputs
    assert not [u for u in traffic.refused if not u.startswith(DEV_UI_FONT_HOSTS)]
    assert shot.stat().st_size > 10_000


def test_docs_and_redoc_render_offline(
    server: ServerProcess, browser: tuple[BrowserContext, Traffic], tmp_path: Path
) -> None:
    context, traffic = browser
    page = context.new_page()
    page.goto(server.base_url + "/docs")
    page.locator(".swagger-ui .info .title").get_by_text("agent-service").wait_for()
    page.locator(".opblock-summary-path").first.wait_for()  # the operations were rendered
    screenshot(page, tmp_path, "docs", full_page=False)
    page.goto(server.base_url + "/redoc")
    page.locator("h1").get_by_text("agent-service").first.wait_for()
    screenshot(page, tmp_path, "redoc", full_page=False)
    assert [u for u in traffic.refused if u != REDOCLY_LOGO] == []
