"""Principal: the authenticated caller, and what it may touch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from app.errors import AgentServiceError

ADMIN_SCOPE = "agent-service:admin"
"""JWT scope (in `scope` or `scp`) that makes the caller an admin."""

STATE_KEY = "principal"
"""Key of the caller in the ASGI scope's `state` (`request.state.principal`)."""

_RESERVED_STATE_PREFIXES = ("app:", "temp:")


class UnauthenticatedError(AgentServiceError):
    """No credential, or one that is not valid (401)."""

    code = "unauthenticated"


class ForbiddenError(AgentServiceError):
    """The caller is known but may not do this (403)."""

    code = "forbidden"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, or an admin that may act for any user."""

    user_id: str
    admin: bool = False
    apps: frozenset[str] | None = None
    """Apps the caller may use; None: every app."""

    def may_use_app(self, app: str) -> bool:
        """Return whether the caller may use `app`."""
        return self.apps is None or app in self.apps

    def may_act_for(self, user_id: str) -> bool:
        """Return whether the caller may use `user_id`'s paths."""
        return self.admin or user_id == self.user_id


def principal_of(conn: HTTPConnection) -> Principal | None:
    """Return the caller of a request or WebSocket (None when auth is off)."""
    state = conn.scope.get("state")
    return state.get(STATE_KEY) if state else None


def check_client_state(principal: Principal | None, state: Mapping[str, Any] | None) -> None:
    """Refuse `app:`/`temp:` keys in client-written state unless the caller is an admin.

    `app:` state is shared by every user of the app; `temp:` state belongs to one invocation.
    With auth off (no principal) every caller is trusted.

    Raises:
        ForbiddenError: a reserved key written by a non-admin.
    """
    if principal is None or principal.admin or not state:
        return
    reserved = sorted(k for k in state if k.startswith(_RESERVED_STATE_PREFIXES))
    if reserved:
        raise ForbiddenError(
            f"Only an admin may set 'app:' or 'temp:' state keys: {', '.join(reserved[:5])}."
        )
