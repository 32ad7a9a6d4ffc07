"""An incremental SSE frame reader for httpx streaming responses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Frame:
    """One SSE frame; `comment` is set for `: ping` keep-alives."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    comment: str | None = None
    lines: list[str] = field(default_factory=list)

    def json(self) -> Any:
        """Parse `data`."""
        assert self.data is not None
        return json.loads(self.data)


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """Yield frames as they arrive; asserts the framing is exact."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            yield _parse(block)
    assert buffer == "", f"stream ended mid-frame: {buffer!r}"


def _parse(block: str) -> Frame:
    frame = Frame(lines=block.split("\n"))
    for line in frame.lines:
        if line.startswith(":"):
            frame.comment = line[1:].strip()
            continue
        name, sep, value = line.partition(": ")
        assert sep, f"malformed line {line!r}"
        assert name in ("id", "event", "data"), f"unexpected field {line!r}"
        assert getattr(frame, name) is None, f"duplicate {name} in {block!r}"
        setattr(frame, name, value)
    return frame
