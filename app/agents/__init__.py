"""Agents: LLM agents, workflow agents, and the contexts they run in."""

from __future__ import annotations

# Context modules first: app.tools imports callback_context while this package initializes.
from app.agents.callback_context import CallbackContext
from app.agents.invocation_context import InvocationContext
from app.agents.live_request_queue import LiveRequest, LiveRequestQueue
from app.agents.readonly_context import ReadonlyContext
from app.agents.run_config import RunConfig, StreamingMode

from app.agents.base_agent import BaseAgent  # isort: skip
from app.agents.llm_agent import Agent, LlmAgent  # isort: skip
from app.agents.loop_agent import LoopAgent  # isort: skip
from app.agents.parallel_agent import ParallelAgent  # isort: skip
from app.agents.sequential_agent import SequentialAgent  # isort: skip

__all__ = [
    "Agent",
    "BaseAgent",
    "CallbackContext",
    "InvocationContext",
    "LiveRequest",
    "LiveRequestQueue",
    "LlmAgent",
    "LoopAgent",
    "ParallelAgent",
    "ReadonlyContext",
    "RunConfig",
    "SequentialAgent",
    "StreamingMode",
]
