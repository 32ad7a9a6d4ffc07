"""FunctionTool: a Python function exposed to the model, declared from its signature."""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from app.tools.base_tool import BaseTool

if TYPE_CHECKING:
    from app.tools.tool_context import ToolContext

_INJECTED = {"tool_context", "self", "cls"}
_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$", re.MULTILINE)
_SECTION_HEADER = re.compile(r"^\s*(Returns|Raises|Yields|Examples?|Notes?):\s*$", re.MULTILINE)
_ARG_LINE = re.compile(r"^\s{2,}(\*{0,2}\w+)\s*(?:\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {arg: description})."""
    doc = inspect.cleandoc(doc or "")
    match = _ARGS_HEADER.search(doc)
    if match is None:
        end = _SECTION_HEADER.search(doc)
        return (doc[: end.start()] if end else doc).strip(), {}
    description = doc[: match.start()].strip()
    rest = doc[match.end() :]
    end = _SECTION_HEADER.search(rest)
    block = rest[: end.start()] if end else rest
    args: dict[str, str] = {}
    current: str | None = None
    arg_indent: int | None = None
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        arg = _ARG_LINE.match(line)
        # Only lines at the first argument's indentation start a new argument; deeper lines
        # continue the description, even when they contain "word:".
        if arg and (arg_indent is None or indent == arg_indent):
            arg_indent = indent
            current = arg.group(1).lstrip("*")
            args[current] = arg.group(2).strip()
        elif current:
            args[current] = (args[current] + " " + line.strip()).strip()
    return description, args


def _resolve_hints(func: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """Resolve the parameters' type hints one by one, so one unresolvable annotation (say a
    ToolContext imported only for type checkers) does not erase the others' types."""
    try:
        return typing.get_type_hints(func)
    except Exception:  # noqa: BLE001 - fall back to resolving each annotation alone
        pass
    namespace = dict(getattr(func, "__globals__", {}))
    hints: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            continue
        if isinstance(annotation, str):
            try:
                # The tool author's own annotation, evaluated in its own module.
                annotation = eval(annotation, namespace)
            except Exception:  # noqa: BLE001 - unresolvable: let the model send anything
                annotation = Any
        hints[name] = annotation
    return hints


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto-generated `title`s: they cost tokens and tell the model nothing."""
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


class FunctionTool(BaseTool):
    """Wraps a sync or async function. Sync functions run on a worker thread.

    The declaration comes from the signature: type hints become a JSON schema, the
    docstring's summary the description and its `Args:` section the parameter descriptions.
    A parameter named `tool_context` receives the ToolContext and is hidden from the model.
    """

    def __init__(self, func: Callable[..., Any], *, is_long_running: bool = False) -> None:
        name = getattr(func, "__name__", None) or type(func).__name__
        description, arg_docs = _parse_docstring(inspect.getdoc(func) or "")
        super().__init__(name=name, description=description, is_long_running=is_long_running)
        self.func = func
        self._is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
        )
        signature = inspect.signature(func)
        self._wants_context = "tool_context" in signature.parameters
        self._args_model = self._build_args_model(func, signature, arg_docs)
        self._declaration = self._build_declaration()

    def _build_args_model(
        self, func: Callable[..., Any], signature: inspect.Signature, arg_docs: dict[str, str]
    ) -> type[BaseModel]:
        hints = _resolve_hints(func, signature)
        fields: dict[str, Any] = {}
        for pname, param in signature.parameters.items():
            if pname in _INJECTED or param.kind in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                continue
            annotation = hints.get(pname, Any)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[pname] = (annotation, Field(default, description=arg_docs.get(pname)))
        return create_model(
            f"{self.name}_args",
            __config__=ConfigDict(arbitrary_types_allowed=True),
            **fields,
        )

    def _build_declaration(self) -> types.FunctionDeclaration:
        description = self.description
        if self.is_long_running:
            description = (
                description + "\n\nNOTE: This is a long-running operation. Do not call this "
                "tool again if it has already returned some status."
            ).strip()
        parameters = None
        if self._args_model.model_fields:
            parameters = _strip_titles(self._args_model.model_json_schema())
        return types.FunctionDeclaration(
            name=self.name, description=description or None, parameters_json_schema=parameters
        )

    def _get_declaration(self) -> types.FunctionDeclaration:
        return self._declaration

    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        """Validate `args` against the signature and call the function."""
        try:
            validated = self._args_model.model_validate(args or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {err['msg']}"
                for err in exc.errors()
            )
            return {"error": f"Invalid arguments for {self.name}: {problems}"}
        kwargs = {name: getattr(validated, name) for name in self._args_model.model_fields}
        if self._wants_context:
            kwargs["tool_context"] = tool_context
        if self._is_async:
            result = await self.func(**kwargs)
        else:
            # A sync tool may block (HTTP, files); keep it off the event loop.
            result = await asyncio.to_thread(self.func, **kwargs)
        return self._response(result)

    def _response(self, result: Any) -> Any:
        """Turn the function's return value into the JSON-able function response."""
        return to_jsonable_python(result, fallback=str)


class LongRunningFunctionTool(FunctionTool):
    """A FunctionTool whose result arrives later (e.g. a human approval)."""

    def __init__(self, func: Callable[..., Any]) -> None:
        super().__init__(func, is_long_running=True)
