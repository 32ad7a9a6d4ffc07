"""Fencing tokens: appends made on behalf of a run carry the token it got with the session.

The runs layer takes a session for one invocation by bumping the session's fencing token and
runs the Runner inside `fenced(token)`. Every append made in that context (the Runner's, its
tools', in tasks started from it) is then refused with `RunLostError` once the token moved on,
that is once another writer sealed or took over the session. Appends outside any `fenced`
context are not fenced (library use, `PATCH` of state), only guarded by `seq`.

`InMemorySessionService` lives in one process, where the runs layer cancels a run's task
directly; it does not check tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_fence: ContextVar[int | None] = ContextVar("session_fence", default=None)


@contextmanager
def fenced(token: int) -> Iterator[None]:
    """Guard the appends made in this context with the session's fencing token `token`."""
    reset = _fence.set(token)
    try:
        yield
    finally:
        _fence.reset(reset)


def current_fence() -> int | None:
    """Return the fencing token appends in this context carry (None: not fenced)."""
    return _fence.get()
