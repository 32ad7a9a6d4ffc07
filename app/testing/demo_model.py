"""DemoModel: a deterministic offline model, so the example agents work without an API key.

It is not a language model: it picks a declared tool by keywords in the user's message,
fills the arguments with simple heuristics, and after a tool answers it turns the result
into a sentence. A coordinator (an agent that may `transfer_to_agent`) hands the turn to the
specialist whose keywords match. Under token streaming the reply arrives word by word.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncGenerator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from google.genai import types
from pydantic import Field

from app.events.llm_response import LlmResponse
from app.models.base_llm import BaseLlm
from app.models.base_llm_connection import BaseLlmConnection
from app.models.llm_request import LlmRequest

logger = logging.getLogger(__name__)

TRANSFER_TOOL = "transfer_to_agent"

_API_KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
_USAGE = types.GenerateContentResponseUsageMetadata(
    prompt_token_count=0, candidates_token_count=0, total_token_count=0
)
_GENERIC_WORDS = {"get", "current", "find", "search", "lookup", "the", "a", "to", "of", "for"}
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_MATH = re.compile(r"[\d.\s()+\-*/%^]*\d[\d.\s()+\-*/%^]*")
_TIMEZONE = re.compile(r"\b[A-Z][A-Za-z_]+/[A-Z][A-Za-z_]+\b")
_PLACE = re.compile(r"\b(?:in|to|for|from|at)\s+([A-Z][\w-]*(?:\s+[A-Z][\w-]*)*)")
_CHUNK = re.compile(r"\S+\s*")
_LIVE_TURNS = 10_000


def gemini_configured() -> bool:
    """Return True when google-genai would find credentials (an API key or Vertex AI)."""
    if any(os.environ.get(name) for name in _API_KEY_VARIABLES):
        return True
    return os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in ("1", "true")


def choose_model(
    agent_name: str, gemini_model: str, demo: DemoModel | None = None
) -> str | BaseLlm:
    """Return `gemini_model` when Gemini is configured, else a DemoModel; log the choice once."""
    if gemini_configured():
        logger.info("agent=%s uses model=%s (Gemini credentials found)", agent_name, gemini_model)
        return gemini_model
    logger.info(
        "agent=%s uses the offline DemoModel (set GOOGLE_API_KEY to use %s)",
        agent_name,
        gemini_model,
    )
    return demo or DemoModel()


class DemoModel(BaseLlm):
    """Keyword-driven offline model for demos; deterministic, no network."""

    model: str = "demo"

    keywords: dict[str, list[str]] = Field(default_factory=dict)
    """Tool or agent name -> extra words that select it (besides the words of its name)."""

    greeting: str = "Hello! I am running on the offline demo model."
    """Reply when no tool matches."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        """Answer the last content: summarize tool results, or call the matching tool."""
        reply = self.reply(llm_request)
        if isinstance(reply, types.Part):
            yield LlmResponse(
                content=types.Content(role="model", parts=[reply]), usage_metadata=_USAGE
            )
            return
        async for response in self._text(reply, stream):
            yield response

    def reply(self, llm_request: LlmRequest) -> str | types.Part:
        """Decide the answer to a request: a text, or a function-call part."""
        last = llm_request.contents[-1] if llm_request.contents else None
        parts = (last.parts or []) if last is not None else []
        results = [p.function_response for p in parts if p.function_response]
        if results:
            return _summarize(results)
        message = _user_message(llm_request.contents)
        call = self._pick_call(message, _declarations(llm_request))
        if call is not None:
            return types.Part(function_call=call)
        return self._fallback(message, llm_request)

    def connect(self, llm_request: LlmRequest) -> AbstractAsyncContextManager[BaseLlmConnection]:
        """Open an offline live connection: spoken (synthetic tone) demo replies, per turn."""
        from app.testing.scripted_model import ScriptedModel

        # Each live turn asks `reply` with the conversation so far; the script never runs out
        # in practice (one item per turn).
        script = ScriptedModel(model=self.model, responses=[self.reply] * _LIVE_TURNS)
        return script.connect(llm_request)

    def _pick_call(
        self, message: str, declarations: Mapping[str, dict[str, Any]]
    ) -> types.FunctionCall | None:
        words = {w.lower().rstrip("s") for w in _WORD.findall(message)}
        if not words:
            return None
        # The tool matching the most words wins; ties go to the first declared.
        best, best_score = None, 0
        has_math = any(re.search(r"\d\s*[-+*/%^]\s*[\d(]", m) for m in _MATH.findall(message))
        for name, schema in declarations.items():
            score = self._score(name, words) if name != TRANSFER_TOOL else 0
            if has_math and "expression" in (schema.get("properties") or {}):
                score += 1
            if score > best_score:
                best, best_score = name, score
        if best is not None:
            return types.FunctionCall(name=best, args=_fill_args(declarations[best], message))
        transfer = declarations.get(TRANSFER_TOOL)
        if transfer is not None:
            targets = transfer.get("properties", {}).get("agent_name", {}).get("enum", [])
            scored = sorted(targets, key=lambda t: -self._score(t, words))
            if scored and self._score(scored[0], words):
                return types.FunctionCall(name=TRANSFER_TOOL, args={"agent_name": scored[0]})
        return None

    def _score(self, name: str, words: set[str]) -> int:
        own = {w.rstrip("s") for w in name.lower().split("_")} - _GENERIC_WORDS
        extra = {w.lower().rstrip("s") for w in self.keywords.get(name, [])}
        return len((own | extra) & words)

    def _fallback(self, message: str, llm_request: LlmRequest) -> str:
        recalled = _recalled(llm_request.system_instruction_text())
        if recalled:
            return f"From our earlier conversations I remember: {recalled}"
        tools = [n for n in _declarations(llm_request) if n != TRANSFER_TOOL]
        if not tools:
            return f"{self.greeting} You said: {message}" if message else self.greeting
        return (
            f"{self.greeting} I can help with: {', '.join(tools)}. "
            "Ask me something that mentions one of them."
        )

    async def _text(self, text: str, stream: bool) -> AsyncGenerator[LlmResponse, None]:
        if stream:
            for chunk in _CHUNK.findall(text):
                yield LlmResponse(
                    content=types.Content(role="model", parts=[types.Part(text=chunk)]),
                    partial=True,
                )
                await asyncio.sleep(0)  # like a network stream: one await per chunk
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text=text)]),
            usage_metadata=_USAGE,
        )


def _user_message(contents: list[types.Content]) -> str:
    """Return the text of the newest user message (skipping other agents' context)."""
    for content in reversed(contents):
        if content.role != "user" or not content.parts:
            continue
        texts = [p.text for p in content.parts if p.text]
        if texts and texts[0].strip() != "For context:":
            return " ".join(texts).strip()
    return ""


def _recalled(instruction: str) -> str:
    """Return the remembered lines `preload_memory` put into the instruction ("" if none)."""
    _, found, rest = instruction.partition("<PAST_CONVERSATIONS>")
    if not found:
        return ""
    lines = rest.partition("</PAST_CONVERSATIONS>")[0].strip().splitlines()
    return " ".join(line for line in lines if not line.startswith("Time: "))


def _declarations(llm_request: LlmRequest) -> dict[str, dict[str, Any]]:
    """Return declared function name -> its JSON schema of parameters."""
    found: dict[str, dict[str, Any]] = {}
    for tool in llm_request.config.tools or []:
        if not isinstance(tool, types.Tool):
            continue
        for declaration in tool.function_declarations or []:
            schema = declaration.parameters_json_schema
            if schema is None and declaration.parameters is not None:
                schema = declaration.parameters.model_dump(mode="json", exclude_none=True)
                schema = _lower_types(schema)
            found[declaration.name or ""] = schema if isinstance(schema, dict) else {}
    return found


def _lower_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
            for k, v in schema.items()
        }
    return schema


def _fill_args(schema: dict[str, Any], message: str) -> dict[str, Any]:
    """Guess argument values from the message, parameter by parameter."""
    args: dict[str, Any] = {}
    for name, spec in (schema.get("properties") or {}).items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if "enum" in (spec or {}):
            lowered = message.lower()
            args[name] = next(
                (v for v in spec["enum"] if str(v).lower() in lowered), spec["enum"][0]
            )
        elif kind in ("integer", "number"):
            match = re.search(r"-?\d+(?:\.\d+)?", message)
            value = float(match.group()) if match else 1
            args[name] = int(value) if kind == "integer" else value
        elif name in ("expression", "expr", "formula"):
            candidates = [m.strip() for m in _MATH.findall(message) if m.strip()]
            args[name] = max(candidates, key=len) if candidates else "0"
        elif name in ("query", "question"):
            args[name] = message
        elif name in ("timezone", "tz", "time_zone"):
            match = _TIMEZONE.search(message)
            place = _PLACE.search(message)
            args[name] = match.group() if match else (place.group(1) if place else "UTC")
        else:
            place = _PLACE.search(message)
            capitalized = [w for w in _WORD.findall(message)[1:] if w[0].isupper()]
            args[name] = place.group(1) if place else (capitalized[-1] if capitalized else "Paris")
    return args


def _summarize(results: list[types.FunctionResponse]) -> str:
    """Turn tool results into one sentence per tool."""
    sentences = []
    for result in results:
        response = result.response or {}
        if result.name == TRANSFER_TOOL:
            continue
        if "error" in response:
            sentences.append(f"{result.name} failed: {response['error']}.")
            continue
        facts = ", ".join(f"{k.replace('_', ' ')}: {_show(v)}" for k, v in response.items())
        sentences.append(f"Here is what {result.name} found: {facts}.")
    return " ".join(sentences) or "Done."


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
