"""Observability below the server: tokens and chat spans from a real Gemini call, log scrubbing."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from google.genai import types
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from app.agents import LlmAgent
from app.models.gemini import Gemini
from app.observability import logs, metrics, tracing
from app.runners import InMemoryRunner
from app.testing import FakeGemini

API_KEY = "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjQxMDI0NDQ4MDB9."
    "Qm9ndXNTaWduYXR1cmVGb3JUZXN0aW5nT25seQ"
)
DB_PASSWORD = "pg-Pa55w0rd-9f1c"


def tokens_of(app: str, model: str) -> dict[str, float]:
    """The tokens counter of one app and model, read from the exposition text."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "agent_service_tokens_total"
                and labels.get("app") == app
                and labels.get("model") == model
            ):
                found[labels["kind"]] = sample.value
    return found


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_provider(provider, capture=False)
    try:
        yield memory
    finally:
        tracing.use_provider(None)
        provider.shutdown()


@pytest.fixture
async def gemini_runner(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[InMemoryRunner, FakeGemini]]:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    fake = FakeGemini()
    model = Gemini(model="gemini-obs-test", http_options=fake.http_options())
    agent = LlmAgent(name="helper", model=model, instruction="Be brief.")
    runner = InMemoryRunner(agent=agent, app_name="tokens_app")
    await runner.session_service.create_session(app_name="tokens_app", user_id="u", session_id="s")
    try:
        yield runner, fake
    finally:
        await model.aclose()
        await runner.close()


async def test_gemini_usage_becomes_token_counters_and_chat_span_attributes(
    gemini_runner: tuple[InMemoryRunner, FakeGemini], spans: InMemorySpanExporter
) -> None:
    runner, fake = gemini_runner
    fake.add("three words here")
    before = tokens_of("tokens_app", "gemini-obs-test")
    message = types.Content(role="user", parts=[types.Part(text="hello there model")])
    events = [e async for e in runner.run_async(user_id="u", session_id="s", new_message=message)]
    assert events[-1].text() == "three words here"

    after = tokens_of("tokens_app", "gemini-obs-test")
    usage = events[-1].usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert after.get("prompt", 0) - before.get("prompt", 0) == usage.prompt_token_count
    assert after["candidates"] - before.get("candidates", 0) == usage.candidates_token_count == 3
    [chat] = [s for s in spans.get_finished_spans() if s.name == "chat gemini-obs-test"]
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert attributes["gen_ai.usage.input_tokens"] == usage.prompt_token_count
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('"GET /apps/a/users/u/sessions/s/live?access_token=' + JWT + ' HTTP/1.1" 101', JWT),
        ("Authorization: Bearer " + JWT, JWT),
        ("token " + JWT + " rejected", JWT),
        ("calling with x-goog-api-key: " + API_KEY, API_KEY),
        ("https://example.test/v1?key=" + API_KEY + "&alt=sse", API_KEY),
        ("postgresql+asyncpg://svc:" + DB_PASSWORD + "@db:5432/agents", DB_PASSWORD),
        ("settings {'password': '" + DB_PASSWORD + "', 'host': 'db'}", DB_PASSWORD),
        ('{"api_key": "' + API_KEY + '"}', API_KEY),
    ],
)
def test_redact_removes_secrets_from_lines(line: str, secret: str) -> None:
    cleaned = logs.redact(line)
    assert secret not in cleaned
    assert logs.MASK in cleaned


def test_registered_env_secrets_are_scrubbed_wherever_they_appear() -> None:
    logs.register_env_secrets(
        {
            "MY_SERVICE_TOKEN": "opaque-token-value-1234",
            "AGENT_SERVICE_DATABASE_URL": f"postgresql://svc:{DB_PASSWORD}x@db/agents",
            "HOME": "/root",
        }
    )
    cleaned = logs.redact(f"got opaque-token-value-1234 and {DB_PASSWORD}x from /root")
    assert "opaque-token-value-1234" not in cleaned
    assert f"{DB_PASSWORD}x" not in cleaned
    assert "/root" in cleaned  # not a secret


def test_json_formatter_scrubs_message_and_traceback() -> None:
    record = logging.LogRecord(
        "app.tools", logging.ERROR, __file__, 1, "key=%s failed", (API_KEY,), None
    )
    try:
        raise RuntimeError(f"connect postgresql://u:{DB_PASSWORD}@h/db with {JWT}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    line = logs.JsonFormatter().format(record)
    parsed = json.loads(line)
    assert parsed["level"] == "error" and parsed["logger"] == "app.tools"
    assert parsed["time"].endswith("Z")
    for secret in (API_KEY, DB_PASSWORD, JWT):
        assert secret not in line
    assert "RuntimeError" in parsed["exception"]


def test_text_formatter_wraps_the_inner_one() -> None:
    formatter = logs.redacting_formatter("logging.Formatter", fmt="%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Bearer %s", (JWT,), None)
    assert formatter.format(record) == "INFO Bearer ***"


def test_observability_imports_no_other_layer() -> None:
    """ARCHITECTURE.md: observability is used from any layer and imports none of them."""
    import ast
    from pathlib import Path

    import app.observability

    package = Path(app.observability.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name == "app" or name.startswith("app."):
                    assert name.startswith("app.observability"), f"{path.name} imports {name}"
