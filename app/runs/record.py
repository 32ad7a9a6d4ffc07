"""RunRecord: one run (invocation) as stored, and the statuses it goes through."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

SessionKey = tuple[str, str, str]
"""(app_name, user_id, session_id)"""


class RunStatus(enum.StrEnum):
    """Where a run is in its life; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """Whether the run has ended."""
        return self in _FINAL


_FINAL = frozenset({RunStatus.COMPLETED, RunStatus.ERROR, RunStatus.CANCELLED})


@dataclass(frozen=True)
class RunRecord:
    """A row of the `runs` table."""

    key: SessionKey
    invocation_id: str
    status: RunStatus
    create_time: float
    start_time: float | None = None
    end_time: float | None = None
    last_seq: int | None = None
    error: dict[str, Any] | None = None
    """The problem body the run ended with (status `error`)."""
    owner: str | None = None
    """The replica running it (while `running`)."""
    lease_expires: float | None = None
    fence: int | None = None
    cancel_requested: bool = False
    request: dict[str, Any] | None = None
    """A queued run's request, as JSON."""

    def to_json(self) -> dict[str, Any]:
        """The run as `GET .../runs/{invocationId}` shows it."""
        return {
            "invocationId": self.invocation_id,
            "status": self.status.value,
            "createTime": self.create_time,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "lastSeq": self.last_seq,
            "error": self.error,
        }


def decode_json(value: Any) -> Any:
    """Decode JSON text; pass None and already decoded values through."""
    return json.loads(value) if isinstance(value, str | bytes) else value
