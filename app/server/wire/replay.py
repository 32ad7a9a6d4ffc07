"""Encode a followed run (`RunManager.follow`: replay after a cursor, then live, then its end)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.runs import Frame, RunRecord, RunStatus
from app.server.wire.encoder import EndReason, RunEnd, StreamEncoder

_REASONS: dict[RunStatus, EndReason] = {
    RunStatus.COMPLETED: "completed",
    RunStatus.CANCELLED: "cancelled",
}


async def encode_followed(
    encoder: StreamEncoder, first: Frame, frames: AsyncIterator[Frame]
) -> AsyncIterator[bytes]:
    """Yield `encoder`'s bytes for every frame of a followed run, from `first` to its end."""
    last_seq: int | None = None
    frame: Frame | None = first
    opening = encoder.open()
    if opening:
        yield opening
    try:
        while frame is not None:
            if frame.kind == "stored":
                assert frame.json is not None and frame.seq is not None
                last_seq = frame.seq
                data = encoder.stored(frame.seq, frame.json)
            elif frame.kind == "partial":
                assert frame.json is not None
                data = encoder.partial(frame.json)
            elif frame.kind == "ping":
                data = encoder.ping()
            else:
                assert frame.record is not None
                yield encoder.close(run_end(frame.record, last_seq))
                return
            if data:
                yield data
            frame = await anext(frames, None)
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


def run_end(record: RunRecord, last_seq: int | None = None) -> RunEnd:
    """How a finished run ended, from its record."""
    reason = _REASONS.get(record.status, "error")
    problem = record.error if record.status is RunStatus.ERROR and record.error else None
    seq = record.last_seq if record.last_seq is not None else last_seq
    return RunEnd(record.invocation_id, seq, reason, problem)
