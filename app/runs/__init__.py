"""Durable runs: one active invocation per session across replicas, cancel, reattach, sweep.

See ARCHITECTURE.md, "Runs, replicas and protocols".
"""

from __future__ import annotations

from app.runs.manager import (
    CANCELLED_RESPONSE,
    ActiveRun,
    CancelReason,
    Frame,
    MultitaskStrategy,
    RunManager,
)
from app.runs.notify import LocalNotifier, PostgresNotifier, RunNotifier
from app.runs.record import RunRecord, RunStatus
from app.runs.sql_store import SqlRunStore
from app.runs.store import MemoryRunStore, RunStore

__all__ = [
    "CANCELLED_RESPONSE",
    "ActiveRun",
    "CancelReason",
    "Frame",
    "LocalNotifier",
    "MemoryRunStore",
    "MultitaskStrategy",
    "PostgresNotifier",
    "RunManager",
    "RunNotifier",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "SqlRunStore",
]
