"""Instruction templating: `{key}` is replaced by the session state's value."""

from __future__ import annotations

import re
from typing import Any

from app.agents.readonly_context import ReadonlyContext

_PLACEHOLDER = re.compile(r"{+[^{}]*}+")
_PREFIXES = ("app:", "user:", "temp:")


def _is_state_name(name: str) -> bool:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name.isidentifier()


async def inject_state(template: str, context: ReadonlyContext) -> str:
    """Replace `{key}` with state values, `{key?}` with "" when absent, and
    `{artifact.NAME}` with an artifact's text. Braces around anything else stay as they are.

    Raises:
        KeyError: a required key is not in the state.
    """
    matches = list(_PLACEHOLDER.finditer(template))
    if not matches:
        return template
    out: list[str] = []
    last = 0
    for match in matches:
        out.append(template[last : match.start()])
        out.append(await _replacement(match.group(), context))
        last = match.end()
    out.append(template[last:])
    return "".join(out)


async def _replacement(token: str, context: ReadonlyContext) -> str:
    name = token.lstrip("{").rstrip("}").strip()
    optional = name.endswith("?")
    if optional:
        name = name[:-1]
    if name.startswith("artifact."):
        filename = name[len("artifact.") :]
        invocation = context._invocation_context
        if invocation.artifact_service is None:
            raise ValueError("Instruction refers to an artifact but no artifact service is set.")
        part = await invocation.artifact_service.load_artifact(
            app_name=context.app_name,
            user_id=context.user_id,
            session_id=invocation.session.id,
            filename=filename,
        )
        if part is None:
            if optional:
                return ""
            raise KeyError(f"Artifact {filename!r} not found.")
        return part.text or ""
    if not _is_state_name(name):
        return token
    state: Any = context.state
    if name in state:
        return str(state[name])
    if optional:
        return ""
    raise KeyError(f"Context variable not found: `{name}`.")
