"""Spans of real runs, captured with the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from app.observability import logs, tracing

from .helpers import message

BASE = "/apps/scripted/users/u1/sessions"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, every span kept in memory."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_provider(provider, capture=False)
    try:
        yield memory
    finally:
        tracing.use_provider(None)
        provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_tool_run_span_tree_continues_the_callers_trace(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    exporter.clear()
    response = await client.post(
        f"{BASE}/s:run", json={"newMessage": message("tool")}, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200

    spans = by_name(exporter.get_finished_spans())
    [server] = spans["POST /apps/{app}/users/{uid}/sessions/{sid}:run"]
    [agent] = spans["invoke_agent scripted"]
    chats = spans["chat scripted"]
    [tool] = spans["execute_tool get_weather"]
    assert len(chats) == 2
    every = [server, agent, *chats, tool]
    assert {format(s.context.trace_id, "032x") for s in every} == {TRACE_ID}
    assert parent_of(server) == int(PARENT_ID, 16)
    assert server.parent is not None and server.parent.is_remote
    assert server.kind is SpanKind.SERVER
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/apps/{app}/users/{uid}/sessions/{sid}:run"
    assert server.attributes["http.response.status_code"] == 200
    assert parent_of(agent) == server.context.span_id
    assert all(parent_of(c) == agent.context.span_id for c in chats)
    assert parent_of(tool) == agent.context.span_id
    assert dict(agent.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "scripted",
        "gen_ai.agent.description": (
            "Answers from a script chosen by the first word of the message."
        ),
        "gen_ai.conversation.id": "s",
    }
    assert chats[0].kind is SpanKind.CLIENT
    assert chats[0].attributes is not None
    assert chats[0].attributes["gen_ai.operation.name"] == "chat"
    assert chats[0].attributes["gen_ai.request.model"] == "scripted"
    assert "gen_ai.input.messages" not in chats[0].attributes  # content capture is off
    assert tool.attributes is not None
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"
    assert str(tool.attributes["gen_ai.tool.call.id"])
    assert "gen_ai.tool.call.arguments" not in tool.attributes
    # Children end before their parents.
    assert tool.end_time is not None and agent.end_time is not None
    assert tool.end_time <= agent.end_time
    assert server.end_time is not None and agent.end_time <= server.end_time


async def test_without_traceparent_a_new_trace_starts(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    exporter.clear()
    await client.post(f"{BASE}/s:run", json={"newMessage": message("chat")})
    spans = by_name(exporter.get_finished_spans())
    [server] = spans["POST /apps/{app}/users/{uid}/sessions/{sid}:run"]
    assert server.parent is None
    assert format(server.context.trace_id, "032x") != TRACE_ID
    [agent] = spans["invoke_agent scripted"]
    assert agent.context.trace_id == server.context.trace_id


async def test_model_error_marks_the_chat_and_server_spans(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    exporter.clear()
    response = await client.post(f"{BASE}/s:run", json={"newMessage": message("boom")})
    assert response.status_code == 200 and "event: error" in response.text
    spans = by_name(exporter.get_finished_spans())
    [chat] = spans["chat scripted"]
    assert chat.status.status_code is StatusCode.ERROR
    assert chat.attributes is not None and chat.attributes["error.type"] == "ModelError"
    [agent] = spans["invoke_agent scripted"]
    assert agent.status.status_code is StatusCode.ERROR
    [server] = spans["POST /apps/{app}/users/{uid}/sessions/{sid}:run"]
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200


async def test_unmatched_paths_name_the_span_by_method_only(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    await client.get("/no/such/9d2e")
    [span] = exporter.get_finished_spans()
    assert span.name == "GET"
    assert span.attributes is not None and "http.route" not in span.attributes


async def test_message_contents_only_with_capture_on(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    tracing.use_provider(tracing._provider, capture=True)
    await client.post(BASE, json={"sessionId": "s"})
    exporter.clear()
    await client.post(f"{BASE}/s:run", json={"newMessage": message("tool in Paris")})
    spans = by_name(exporter.get_finished_spans())
    first_chat = spans["chat scripted"][0]
    assert first_chat.attributes is not None
    messages = json.loads(str(first_chat.attributes["gen_ai.input.messages"]))
    assert messages[-1]["parts"] == [{"text": "tool in Paris"}]
    output = json.loads(str(first_chat.attributes["gen_ai.output.messages"]))
    assert output[0]["parts"][0]["function_call"]["name"] == "get_weather"
    [tool] = spans["execute_tool get_weather"]
    assert tool.attributes is not None
    assert json.loads(str(tool.attributes["gen_ai.tool.call.arguments"])) == {"city": "Paris"}
    assert json.loads(str(tool.attributes["gen_ai.tool.call.result"])) == {
        "city": "Paris",
        "forecast": "sunny",
    }


async def test_log_lines_carry_trace_request_and_run_ids(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture(level=logging.WARNING)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    try:
        await client.post(BASE, json={"sessionId": "s9"})
        response = await client.post(
            "/apps/scripted/users/u7/sessions/s9:run",
            json={"newMessage": message("fail"), "createSession": True},
            headers={"traceparent": TRACEPARENT, "x-request-id": "rid-77"},
        )
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 200  # the failure is in-band
    records = [json.loads(line) for line in lines]
    [failed] = [r for r in records if r["message"].startswith("run failed")]
    server = by_name(exporter.get_finished_spans())[
        "POST /apps/{app}/users/{uid}/sessions/{sid}:run"
    ][0]
    assert failed["request_id"] == "rid-77"
    assert failed["trace_id"] == TRACE_ID
    assert failed["span_id"] == format(server.context.span_id, "016x")
    assert (failed["app"], failed["user"], failed["session"]) == ("scripted", "u7", "s9")
    assert failed["invocation"].startswith("e-")
    assert failed["level"] == "warning" and failed["logger"] == "app.server._run_stream"
