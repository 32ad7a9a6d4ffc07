"""Quota settings: `60/minute`-style limits, and the fixed windows they are counted in."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"^\s*(\d{1,15})\s*/\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """At most `limit` per window of `seconds` (windows aligned on the epoch, UTC days)."""

    limit: int
    seconds: int
    unit: str

    def window_start(self, now: float) -> float:
        """Return the start of the window `now` falls in."""
        return float(math.floor(now / self.seconds) * self.seconds)

    def reset_after(self, now: float) -> int:
        """Whole seconds until the current window ends (at least 1)."""
        return max(1, math.ceil(self.window_start(now) + self.seconds - now))

    def __str__(self) -> str:
        return f"{self.limit}/{self.unit}"


def parse_window_limit(text: str) -> WindowLimit:
    """Parse `N/unit` (unit: second, minute, hour or day; a plural is accepted).

    Raises:
        ValueError: any other form, or N = 0.
    """
    match = _LIMIT.match(text.lower())
    if match is None or match.group(2) not in UNITS or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid limit {text!r}: expected N/second, N/minute, N/hour or N/day with N > 0"
        )
    unit = match.group(2)
    return WindowLimit(limit=int(match.group(1)), seconds=UNITS[unit], unit=unit)
