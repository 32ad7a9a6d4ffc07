"""Calling user callbacks: sync or async, one or a list; the first non-None result wins."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

Callbacks = Callable[..., Any] | Sequence[Callable[..., Any]] | None


def as_list(callbacks: Callbacks) -> list[Callable[..., Any]]:
    """Normalize None, one callback or a list to a list."""
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    return list(callbacks)


async def run_callbacks(callbacks: Callbacks, *args: Any, **kwargs: Any) -> Any:
    """Call each callback in order until one returns non-None; await async ones."""
    for callback in as_list(callbacks):
        result = callback(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if result is not None:
            return result
    return None
