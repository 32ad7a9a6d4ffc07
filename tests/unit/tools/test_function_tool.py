"""FunctionTool, LongRunningFunctionTool, TransferToAgentTool: declarations and execution."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import threading
from typing import TYPE_CHECKING, Any, Literal

import pytest
from google.genai import types
from pydantic import BaseModel

from app.agents import InvocationContext, LlmAgent
from app.models import LlmRequest
from app.plugins import PluginManager
from app.sessions import InMemorySessionService, Session
from app.testing import ScriptedModel
from app.tools import FunctionTool, LongRunningFunctionTool, ToolContext, TransferToAgentTool

if TYPE_CHECKING:
    # Users often import ToolContext for type checkers only; FunctionTool must cope.
    from app.tools import ToolContext as TypeCheckingOnlyToolContext


@pytest.fixture
def tool_context() -> ToolContext:
    agent = LlmAgent(name="assistant", model=ScriptedModel())
    invocation = InvocationContext(
        invocation_id="e-test",
        agent=agent,
        session=Session(id="s1", app_name="app", user_id="u1", state={"city": "Oslo"}),
        session_service=InMemorySessionService(),
        plugin_manager=PluginManager(),
    )
    return ToolContext(invocation, function_call_id="call-1")


def declaration(tool: FunctionTool) -> types.FunctionDeclaration:
    decl = tool._get_declaration()
    assert decl is not None
    return decl


def schema(tool: FunctionTool) -> dict[str, Any]:
    params = declaration(tool).parameters_json_schema
    assert isinstance(params, dict)
    return params


def resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (pydantic puts enums and models under `$defs`)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = root
    for key in ref.removeprefix("#/").split("/"):
        target = target[key]
    return target  # type: ignore[no-any-return]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    zip_code: int


# --- declaration -------------------------------------------------------------------------


def test_declaration_is_named_after_the_function() -> None:
    def get_weather(city: str) -> dict[str, str]:
        return {}

    assert declaration(FunctionTool(get_weather)).name == "get_weather"
    assert FunctionTool(get_weather).name == "get_weather"


def test_scalar_and_list_annotations_become_json_types() -> None:
    def search(query: str, limit: int, ratio: float, exact: bool, tags: list[str]) -> None:
        return None

    props = schema(FunctionTool(search))["properties"]

    assert props["query"]["type"] == "string"
    assert props["limit"]["type"] == "integer"
    assert props["ratio"]["type"] == "number"
    assert props["exact"]["type"] == "boolean"
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}


def test_parameters_without_defaults_are_required_and_defaults_are_not() -> None:
    def search(query: str, limit: int = 10, cursor: str | None = None) -> None:
        return None

    params = schema(FunctionTool(search))

    assert params["required"] == ["query"]
    assert params["properties"]["limit"]["default"] == 10


def test_optional_parameter_allows_null() -> None:
    def lookup(cursor: str | None = None) -> None:
        return None

    cursor = schema(FunctionTool(lookup))["properties"]["cursor"]

    assert {"type": "string"} in cursor["anyOf"]
    assert {"type": "null"} in cursor["anyOf"]


def test_literal_parameter_becomes_an_enum() -> None:
    def set_mode(mode: Literal["fast", "slow"]) -> None:
        return None

    mode = schema(FunctionTool(set_mode))["properties"]["mode"]

    assert mode["enum"] == ["fast", "slow"]


def test_enum_parameter_lists_its_values() -> None:
    def paint(color: Color) -> None:
        return None

    params = schema(FunctionTool(paint))

    assert resolve(params, params["properties"]["color"])["enum"] == ["red", "green"]


def test_pydantic_model_parameter_declares_its_fields() -> None:
    def ship(address: Address) -> None:
        return None

    params = schema(FunctionTool(ship))
    address = resolve(params, params["properties"]["address"])

    assert address["properties"]["street"]["type"] == "string"
    assert address["properties"]["zip_code"]["type"] == "integer"
    assert sorted(address["required"]) == ["street", "zip_code"]


def test_docstring_gives_summary_and_argument_descriptions() -> None:
    def get_weather(city: str, unit: str = "C") -> dict[str, str]:
        """Return the current weather in a city.

        Args:
            city: The city name, e.g. Oslo.
            unit: Temperature unit,
                C or F.

        Returns:
            A weather report.
        """
        return {}

    tool = FunctionTool(get_weather)
    decl = declaration(tool)
    props = schema(tool)["properties"]

    assert decl.description == "Return the current weather in a city."
    assert props["city"]["description"] == "The city name, e.g. Oslo."
    assert props["unit"]["description"] == "Temperature unit, C or F."
    assert "Returns" not in (decl.description or "")


def test_type_checking_only_tool_context_import_keeps_the_other_parameter_types() -> None:
    def remember(city: str, days: int, tool_context: TypeCheckingOnlyToolContext) -> None:
        return None

    props = schema(FunctionTool(remember))["properties"]

    assert props["city"].get("type") == "string"
    assert props["days"].get("type") == "integer"


def test_argument_description_continuation_containing_a_colon_is_kept() -> None:
    def convert(unit: str) -> None:
        """Convert a temperature.

        Args:
            unit: Temperature unit. Allowed
                values: C or F.
        """

    props = schema(FunctionTool(convert))["properties"]

    assert props["unit"]["description"] == "Temperature unit. Allowed values: C or F."


def test_function_without_parameters_declares_none() -> None:
    def ping() -> str:
        return "pong"

    assert declaration(FunctionTool(ping)).parameters_json_schema is None


def test_tool_context_parameter_is_hidden_from_the_model() -> None:
    def remember(fact: str, tool_context: ToolContext) -> None:
        return None

    params = schema(FunctionTool(remember))

    assert list(params["properties"]) == ["fact"]
    assert params["required"] == ["fact"]


async def test_process_llm_request_declares_the_tool_and_registers_it(
    tool_context: ToolContext,
) -> None:
    def ping() -> str:
        return "pong"

    tool = FunctionTool(ping)
    request = LlmRequest()

    await tool.process_llm_request(tool_context=tool_context, llm_request=request)

    assert request.config.tools is not None
    tool_decl = request.config.tools[0]
    assert isinstance(tool_decl, types.Tool)
    assert [d.name for d in tool_decl.function_declarations or []] == ["ping"]
    assert request.tools_dict["ping"] is tool


# --- execution ---------------------------------------------------------------------------


async def test_tool_context_is_injected_when_requested(tool_context: ToolContext) -> None:
    def remember(fact: str, tool_context: ToolContext) -> dict[str, Any]:
        tool_context.state["fact"] = fact
        return {"call": tool_context.function_call_id, "city": tool_context.state["city"]}

    result = await FunctionTool(remember).run_async(
        args={"fact": "sky is blue"}, tool_context=tool_context
    )

    assert result == {"call": "call-1", "city": "Oslo"}
    assert tool_context.actions.state_delta == {"fact": "sky is blue"}


async def test_sync_tool_runs_off_the_event_loop(tool_context: ToolContext) -> None:
    loop_thread = threading.current_thread()
    seen: list[threading.Thread] = []

    def blocking() -> str:
        seen.append(threading.current_thread())
        return "ok"

    assert await FunctionTool(blocking).run_async(args={}, tool_context=tool_context) == "ok"
    assert seen and seen[0] is not loop_thread


async def test_async_tool_is_awaited_on_the_event_loop(tool_context: ToolContext) -> None:
    loop = asyncio.get_running_loop()
    seen: list[asyncio.AbstractEventLoop] = []

    async def fetch(n: int) -> dict[str, int]:
        seen.append(asyncio.get_running_loop())
        return {"double": n * 2}

    result = await FunctionTool(fetch).run_async(args={"n": 21}, tool_context=tool_context)

    assert result == {"double": 42}
    assert seen == [loop]


async def test_defaults_fill_missing_arguments(tool_context: ToolContext) -> None:
    def search(query: str, limit: int = 10) -> dict[str, Any]:
        return {"query": query, "limit": limit}

    result = await FunctionTool(search).run_async(args={"query": "x"}, tool_context=tool_context)

    assert result == {"query": "x", "limit": 10}


async def test_arguments_are_converted_to_the_annotated_types(tool_context: ToolContext) -> None:
    received: list[Any] = []

    def ship(address: Address, color: Color) -> str:
        received.extend([address, color])
        return "shipped"

    await FunctionTool(ship).run_async(
        args={"address": {"street": "Main", "zip_code": 1234}, "color": "red"},
        tool_context=tool_context,
    )

    assert received == [Address(street="Main", zip_code=1234), Color.RED]


@pytest.mark.parametrize(
    "args",
    [{}, {"n": "not a number"}, {"n": 1, "extra": [1, 2]}],
    ids=["missing", "wrong-type", "wrong-type-of-optional"],
)
async def test_invalid_arguments_return_an_error_without_calling(
    tool_context: ToolContext, args: dict[str, Any]
) -> None:
    calls: list[int] = []

    def square(n: int, extra: int = 0) -> int:
        calls.append(n)
        return n * n

    result = await FunctionTool(square).run_async(args=args, tool_context=tool_context)

    assert isinstance(result, dict)
    assert set(result) == {"error"}
    assert "square" in result["error"]
    assert calls == []


async def test_non_dict_results_are_made_json_safe(tool_context: ToolContext) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "<opaque>"

    def report() -> Any:
        return {
            "when": dt.date(2024, 5, 1),
            "tags": {"only"},
            "model": Address(street="Main", zip_code=1),
            "blob": Opaque(),
        }

    def plain() -> list[int]:
        return [1, 2]

    result = await FunctionTool(report).run_async(args={}, tool_context=tool_context)

    json.dumps(result)  # must not raise
    assert result == {
        "when": "2024-05-01",
        "tags": ["only"],
        "model": {"street": "Main", "zip_code": 1},
        "blob": "<opaque>",
    }
    assert await FunctionTool(plain).run_async(args={}, tool_context=tool_context) == [1, 2]


async def test_tool_exception_propagates_to_the_caller(tool_context: ToolContext) -> None:
    def broken() -> None:
        raise LookupError("nope")

    with pytest.raises(LookupError, match="nope"):
        await FunctionTool(broken).run_async(args={}, tool_context=tool_context)


# --- long-running ------------------------------------------------------------------------


def test_long_running_tool_is_flagged_and_says_so_to_the_model() -> None:
    def ask_approval(amount: int) -> dict[str, str]:
        """Ask a manager to approve a payment."""
        return {"status": "pending"}

    tool = LongRunningFunctionTool(ask_approval)
    description = declaration(tool).description or ""

    assert tool.is_long_running
    assert not FunctionTool(ask_approval).is_long_running
    assert description.startswith("Ask a manager to approve a payment.")
    assert "long-running" in description
    assert "long-running" not in (declaration(FunctionTool(ask_approval)).description or "")


# --- transfer_to_agent -------------------------------------------------------------------


def test_transfer_declaration_lists_the_allowed_agents_as_an_enum() -> None:
    tool = TransferToAgentTool(["billing", "support"])
    decl = tool._get_declaration()
    params = decl.parameters_json_schema

    assert decl.name == "transfer_to_agent"
    assert isinstance(params, dict)
    assert params["properties"]["agent_name"]["enum"] == ["billing", "support"]
    assert params["required"] == ["agent_name"]


async def test_transfer_to_a_known_agent_sets_the_action(tool_context: ToolContext) -> None:
    tool = TransferToAgentTool(["billing", "support"])

    result = await tool.run_async(args={"agent_name": "billing"}, tool_context=tool_context)

    assert "error" not in result
    assert tool_context.actions.transfer_to_agent == "billing"


async def test_transfer_to_an_unknown_agent_is_an_error(tool_context: ToolContext) -> None:
    tool = TransferToAgentTool(["billing", "support"])

    result = await tool.run_async(args={"agent_name": "sales"}, tool_context=tool_context)

    assert "sales" in result["error"]
    assert tool_context.actions.transfer_to_agent is None
