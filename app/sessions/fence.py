"""Fencing tokens: appends made on behalf of a run carry the token it got with the session.

The runs layer takes a session for one invocation by bumping the session's fencing token and
runs the Runner inside `fenced(token)`. Every append made in that context (the Runner's, its
tools', in tasks started from it) is then refused with `RunLostError` once the token moved on,
that is once another writer sealed or took over the session. Appends outside any `fenced`
context are not fenced (library use, `PATCH` of state), only guarded by `seq`.

The take can also ride on the run's first write: the runs layer then runs the Runner inside
`fenced(claim)` with a pending `SessionClaim`, and a session store that supports it (Postgres)
takes the session in the statement that appends the user's event, and fills in the token. That
saves a round trip and a commit per run. The Runner loads the session before (the append is
guarded by `seq`, so nothing can slip in between); until the claim is taken, the context is not
fenced.

`InMemorySessionService` lives in one process, where the runs layer cancels a run's task
directly; it does not check tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)
class SessionClaim:
    """A run's take of its session: pending until a session store takes it (`fence` set)."""

    invocation_id: str
    owner: str
    """The replica that drives the run (stored as the run's owner)."""
    lease_seconds: float
    fence: int | None = None
    """The session's fencing token once taken (None: still pending)."""
    create_time: float | None = None
    """When the run's row was created (set with `fence`)."""
    defer_author: str | None = None
    """Hold back the store's write of a plain final answer by this author (the root LlmAgent,
    whose run ends with it) until the run appends again or ends, so that the run's end rides
    on that write (see `DatabaseSessionService.end_run`). The event is applied to the run's
    session at once; the caller sends it to its client only once it is stored."""
    held: Any = None
    """The write held back, if any (the session store's own record)."""

    @property
    def pending(self) -> bool:
        """Whether the session is still to be taken."""
        return self.fence is None


_fence: ContextVar[int | SessionClaim | None] = ContextVar("session_fence", default=None)


@contextmanager
def fenced(token: int | SessionClaim) -> Iterator[None]:
    """Guard this context's appends with fencing token `token` (or the one a claim gets)."""
    reset = _fence.set(token)
    try:
        yield
    finally:
        _fence.reset(reset)


def current_fence() -> int | None:
    """Return the fencing token appends in this context carry (None: not fenced)."""
    token = _fence.get()
    if isinstance(token, SessionClaim):
        return token.fence
    return token


def current_claim() -> SessionClaim | None:
    """Return this context's claim (pending or taken), if the context has one."""
    token = _fence.get()
    return token if isinstance(token, SessionClaim) else None
