"""agent-service: an agent runtime (Runner, agents, sessions) served over HTTP."""

from __future__ import annotations

__version__ = "0.1.0"
