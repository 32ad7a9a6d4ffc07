"""Quotas: the per-user limits on runs and model tokens, checked before a run stores anything.

`Quotas.for_run(user)` gives a `RunQuota`, which the shared run machinery (`_run_stream`, the
live route) drives: `admit()` before the run takes its session (raises a 429 error),
`observe(event)` per event (adds the tokens of model responses, in memory), `end()` once the
run ended (frees the active slot, writes the tokens in one statement).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from app.errors import AgentServiceError
from app.events.event import Event
from app.server.quotas.rates import WindowLimit
from app.server.quotas.store import RUNS, TOKENS, QuotaStore

logger = logging.getLogger(__name__)

ACTIVE_RETRY_AFTER_SECONDS = 1
"""`Retry-After` when the user has too many active runs (no window to wait for)."""


class QuotaExceededError(AgentServiceError):
    """A per-user quota is used up (429, with `Retry-After` and `RateLimit-*` headers)."""

    code = "rate_limited"

    def __init__(self, detail: str, *, limit: int, reset: int) -> None:
        super().__init__(detail)
        self.retry_after = reset
        self.headers = rate_limit_headers(limit, 0, reset)


class RateLimitedError(QuotaExceededError):
    """Too many runs in the window, or too many active runs."""

    code = "rate_limited"


class TokenBudgetExceededError(QuotaExceededError):
    """The user's model tokens for the window are used up."""

    code = "token_budget_exceeded"


def rate_limit_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """The `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(remaining, 0)),
        "RateLimit-Reset": str(reset),
    }


@dataclass(frozen=True, slots=True)
class Quotas:
    """The configured limits (any may be off) and the store that counts against them."""

    store: QuotaStore
    run_rate: WindowLimit | None = None
    max_active_runs: int | None = None
    token_budget: WindowLimit | None = None

    def for_run(self, user_id: str) -> RunQuota:
        """Return the quota tracker of one run of `user_id`."""
        return RunQuota(self, user_id)

    async def usage(self, user_id: str) -> dict[str, Any]:
        """The user's counters, limits and resets (`GET .../usage`)."""
        now = time.time()
        rate, budget = self.run_rate, self.token_budget
        counters = await self.store.counters(
            user_id,
            rate.window_start(now) if rate else None,
            budget.window_start(now) if budget else None,
        )
        return {
            "runs": _window_usage(rate, counters.runs, now),
            "active_runs": (
                None
                if self.max_active_runs is None
                else {"limit": self.max_active_runs, "used": counters.active}
            ),
            "tokens": _window_usage(budget, counters.tokens, now),
        }


def _window_usage(limit: WindowLimit | None, used: int, now: float) -> dict[str, Any] | None:
    if limit is None:
        return None
    return {
        "limit": limit.limit,
        "used": used,
        "remaining": max(limit.limit - used, 0),
        "window": limit.unit,
        "reset_seconds": limit.reset_after(now),
    }


class RunQuota:
    """One run's use of its user's quotas: admitted once, ended once."""

    __slots__ = (
        "_active",
        "_ended",
        "_quotas",
        "_rate_window",
        "headers",
        "tokens",
        "tokens_before",
        "user_id",
    )

    def __init__(self, quotas: Quotas, user_id: str) -> None:
        self._quotas = quotas
        self.user_id = user_id
        self.tokens = 0
        """Model tokens the run's responses reported so far (written by `end`)."""
        self.tokens_before = 0
        """Tokens the user had used in the budget window when the run was admitted."""
        self.headers: list[tuple[bytes, bytes]] = []
        """`RateLimit-*` headers for the run's response (once admitted)."""
        self._active = False
        self._ended = False
        self._rate_window: float | None = None

    async def admit(self) -> None:
        """Check the budget and take an active slot and a run of the window, or raise.

        Raises:
            TokenBudgetExceededError: the budget of the window is used up.
            RateLimitedError: too many active runs, or runs in the window.
        """
        quotas, store, user = self._quotas, self._quotas.store, self.user_id
        now = time.time()
        budget = quotas.token_budget
        if budget is not None:
            window = budget.window_start(now)
            used = self.tokens_before = (await store.counters(user, None, window)).tokens
            if used >= budget.limit:
                raise TokenBudgetExceededError(
                    f"The token budget of {budget} is used up ({used} tokens).",
                    limit=budget.limit,
                    reset=budget.reset_after(now),
                )
        limit = quotas.max_active_runs
        if limit is not None:
            if await store.reserve_active(user, limit) is None:
                # Maybe slots of runs whose replica died: count again from the runs.
                await store.recount_active(user)
                if await store.reserve_active(user, limit) is None:
                    raise RateLimitedError(
                        f"Too many active runs: at most {limit} queued or running per user.",
                        limit=limit,
                        reset=ACTIVE_RETRY_AFTER_SECONDS,
                    )
            self._active = True
        rate = quotas.run_rate
        if rate is not None:
            window = rate.window_start(now)
            count = await store.take(user, RUNS, window, rate.limit)
            if count is None:
                await self._release_active()
                raise RateLimitedError(
                    f"Too many runs: at most {rate}.", limit=rate.limit, reset=rate.reset_after(now)
                )
            self._rate_window = window
            headers = rate_limit_headers(rate.limit, rate.limit - count, rate.reset_after(now))
            self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    def observe(self, event: Event) -> None:
        """Count the tokens of a model response (partial chunks carry none of their own)."""
        usage = event.usage_metadata
        if usage is not None and not event.partial and usage.total_token_count:
            self.tokens += usage.total_token_count

    def check_budget(self) -> None:
        """Raise once the window's tokens, this run's included, use up the budget.

        For live sessions, which may last long; a run over HTTP is only checked at its start.

        Raises:
            TokenBudgetExceededError: the budget is used up.
        """
        budget = self._quotas.token_budget
        if budget is None or self.tokens_before + self.tokens < budget.limit:
            return
        now = time.time()
        raise TokenBudgetExceededError(
            f"The token budget of {budget} is used up.",
            limit=budget.limit,
            reset=budget.reset_after(now),
        )

    async def end(self) -> None:
        """Free the active slot and record the tokens; later calls do nothing."""
        if self._ended:
            return
        self._ended = True
        await self._release_active()
        budget = self._quotas.token_budget
        if budget is not None and self.tokens > 0:
            window = budget.window_start(time.time())
            await self._quotas.store.add(self.user_id, TOKENS, window, self.tokens)

    async def _release_active(self) -> None:
        if self._active:
            self._active = False
            await self._quotas.store.release_active(self.user_id)
