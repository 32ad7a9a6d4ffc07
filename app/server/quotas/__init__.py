"""Per-user quotas: runs per window, active runs, and a token budget (README: Quotas)."""

from __future__ import annotations

from app.server.quotas.limiter import (
    QuotaExceededError,
    Quotas,
    RateLimitedError,
    RunQuota,
    TokenBudgetExceededError,
)
from app.server.quotas.rates import WindowLimit, parse_window_limit
from app.server.quotas.store import MemoryQuotaStore, PostgresQuotaStore, QuotaStore

__all__ = [
    "MemoryQuotaStore",
    "PostgresQuotaStore",
    "QuotaExceededError",
    "QuotaStore",
    "Quotas",
    "RateLimitedError",
    "RunQuota",
    "TokenBudgetExceededError",
    "WindowLimit",
    "parse_window_limit",
]
