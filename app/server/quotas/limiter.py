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
from app.server.quotas.store import Admission, Limits, QuotaStore

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

    async def admit(self) -> None:
        """Check the budget and take an active slot and a run of the window, or raise.

        One store call (one statement on Postgres); a refusal may cost one or two more.

        Raises:
            TokenBudgetExceededError: the budget of the window is used up.
            RateLimitedError: too many active runs, or runs in the window.
        """
        quotas, store, user = self._quotas, self._quotas.store, self.user_id
        now = time.time()
        budget, rate, max_active = quotas.token_budget, quotas.run_rate, quotas.max_active_runs
        limits = Limits(
            tokens_window=budget.window_start(now) if budget else 0.0,
            token_budget=budget.limit if budget else None,
            active_limit=max_active,
            runs_window=rate.window_start(now) if rate else 0.0,
            run_limit=rate.limit if rate else None,
        )
        admission = await store.admit(user, limits)
        if max_active is not None and admission.active is None and not self._over(admission):
            # Maybe slots of runs whose replica died: count them again from the runs.
            await store.recount_active(user)
            admission = await store.admit(user, limits)
        self.tokens_before = admission.tokens_used
        if budget is not None and admission.tokens_used >= budget.limit:
            raise TokenBudgetExceededError(
                f"The token budget of {budget} is used up ({admission.tokens_used} tokens).",
                limit=budget.limit,
                reset=budget.reset_after(now),
            )
        if max_active is not None:
            if admission.active is None:
                raise RateLimitedError(
                    f"Too many active runs: at most {max_active} queued or running per user.",
                    limit=max_active,
                    reset=ACTIVE_RETRY_AFTER_SECONDS,
                )
            self._active = True
        if rate is not None:
            if admission.runs is None:
                await self._release_active()
                raise RateLimitedError(
                    f"Too many runs: at most {rate}.", limit=rate.limit, reset=rate.reset_after(now)
                )
            headers = rate_limit_headers(
                rate.limit, rate.limit - admission.runs, rate.reset_after(now)
            )
            self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    def _over(self, admission: Admission) -> bool:
        budget = self._quotas.token_budget
        return budget is not None and admission.tokens_used >= budget.limit

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
        """Free the active slot and record the tokens (one statement); later calls do nothing."""
        if self._ended:
            return
        self._ended = True
        budget = self._quotas.token_budget
        tokens = self.tokens if budget is not None else 0
        if not (self._active or tokens):
            return
        window = budget.window_start(time.time()) if budget is not None else 0.0
        held, self._active = self._active, False
        await self._quotas.store.finish(
            self.user_id, release_active=held, tokens_window=window, tokens=tokens
        )

    async def _release_active(self) -> None:
        if self._active:
            self._active = False
            await self._quotas.store.finish(
                self.user_id, release_active=True, tokens_window=0.0, tokens=0
            )
