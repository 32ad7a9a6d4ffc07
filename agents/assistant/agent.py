"""The `assistant` app: a single LlmAgent with three real tools and long-term memory.

`preload_memory` puts what the user said in earlier (closed) sessions that matches the
current message into the instruction; `load_memory` lets the model search memory itself.

Uses Gemini when GOOGLE_API_KEY (or GEMINI_API_KEY / Vertex AI settings) is set, otherwise
the offline DemoModel, so it works on a machine with no network.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.agents import LlmAgent
from app.testing.demo_model import DemoModel, choose_model
from app.tools import load_memory_tool, preload_memory_tool

_WEATHER: dict[str, dict[str, Any]] = {
    "paris": {"forecast": "sunny", "temperature_c": 21, "humidity_pct": 40},
    "london": {"forecast": "light rain", "temperature_c": 14, "humidity_pct": 82},
    "new york": {"forecast": "cloudy", "temperature_c": 17, "humidity_pct": 60},
    "tokyo": {"forecast": "clear", "temperature_c": 24, "humidity_pct": 55},
    "sydney": {"forecast": "windy", "temperature_c": 19, "humidity_pct": 50},
    "berlin": {"forecast": "overcast", "temperature_c": 12, "humidity_pct": 70},
}

_CITY_ZONES = {
    "paris": "Europe/Paris",
    "london": "Europe/London",
    "berlin": "Europe/Berlin",
    "new york": "America/New_York",
    "tokyo": "Asia/Tokyo",
    "sydney": "Australia/Sydney",
    "utc": "UTC",
}


def get_weather(city: str) -> dict[str, Any]:
    """Return today's weather for a city (from a built-in table of a few cities)."""
    found = _WEATHER.get(city.strip().lower())
    if found is None:
        known = ", ".join(name.title() for name in _WEATHER)
        return {"error": f"No weather data for {city}; known cities: {known}."}
    return {"city": city.strip().title(), **found}


def get_current_time(timezone: str) -> dict[str, Any]:
    """Return the current local time in an IANA timezone (e.g. Europe/Paris) or a known city."""
    name = _CITY_ZONES.get(timezone.strip().lower(), timezone.strip())
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return {"error": f"Unknown timezone {timezone!r}; use an IANA name like Europe/Paris."}
    now = dt.datetime.now(zone)
    return {"timezone": name, "time": now.strftime("%H:%M"), "date": now.date().isoformat()}


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_MAX_EXPRESSION_CHARS = 200
_MAX_EXPONENT = 100


def calculate(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression (+ - * / // % ** and parentheses) safely."""
    text = expression.replace("^", "**").strip()
    if len(text) > _MAX_EXPRESSION_CHARS:
        return {"error": "The expression is too long."}
    try:
        value = _evaluate(ast.parse(text, mode="eval").body)
    except ZeroDivisionError:
        return {"error": "Division by zero."}
    except (SyntaxError, ValueError, TypeError, OverflowError) as exc:
        return {"error": f"Cannot evaluate {expression!r}: {exc}"}
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return {"expression": expression, "result": value}


def _evaluate(node: ast.AST) -> int | float:
    """Evaluate numbers and arithmetic operators only; anything else is refused."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)  # type: ignore[no-any-return]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))  # type: ignore[no-any-return]
    raise ValueError("only numbers and + - * / // % ** are allowed")


root_agent = LlmAgent(
    name="assistant",
    description=(
        "A helpful assistant that knows the weather, the time and arithmetic, and remembers "
        "earlier conversations."
    ),
    model=choose_model(
        "assistant",
        "gemini-2.5-flash",
        DemoModel(
            keywords={
                "get_weather": ["weather", "forecast", "temperature", "rain", "sunny"],
                "get_current_time": ["time", "clock", "hour", "date"],
                "calculate": ["calculate", "compute", "plus", "minus", "times", "sum"],
                "load_memory": ["remember", "recall", "earlier", "told", "said"],
            }
        ),
    ),
    instruction=(
        "You are a concise assistant. Use get_weather for weather questions, "
        "get_current_time for the time in a place, and calculate for arithmetic. "
        "Answer in one or two sentences."
    ),
    tools=[get_weather, get_current_time, calculate, load_memory_tool, preload_memory_tool],
)
