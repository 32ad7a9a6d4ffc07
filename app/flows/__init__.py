"""Flows: the loops that drive an LlmAgent (request building, model calls, tools, live)."""

from __future__ import annotations
