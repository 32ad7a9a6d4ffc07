"""uvicorn HTTP protocols that send what one event-loop pass writes as one socket write.

uvicorn writes every piece of a response as it comes: the status line and headers, each body
chunk, and the closing chunk of a chunked body are separate `send()` calls. A chat run's SSE
stream is four of them, and on loopback each one costs the kernel's whole TCP path for both
ends (about 40 us of CPU here), more than most of the run's own steps. `CoalescingTransport`
collects the writes made during one pass of the event loop and hands them to the socket
together at the end of that pass. Nothing waits on a timer, so nothing is delayed beyond the
callbacks already queued: a frame whose run then waits on the database or the model leaves at
once, and frames produced together (the head and the first event, the last event and the `end`
frame) share one write.

Backpressure is uvicorn's: once the socket's transport holds more than its high-water mark,
it pauses the protocol and uvicorn's `send()` waits until the reader catches up. Writes held
back here would hide from that check, so as soon as more than the high-water mark is pending
they go to the socket at once. A reader that stops reading therefore costs at most about two
high-water marks of buffered bytes (plus one chunk), not the whole answer.

`agent-service serve` uses these protocols (`--http auto|h11|httptools` picks the parser).
WebSocket upgrades hand the plain transport to the WebSocket protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is installed with uvicorn[standard]
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

__all__ = [
    "CoalescingH11Protocol",
    "CoalescingHttpToolsProtocol",
    "CoalescingTransport",
    "protocol_class",
]


class CoalescingTransport(asyncio.Transport):
    """Wraps a transport; writes made in one loop pass reach the socket as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.inner = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._high_water = _high_water(transport)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        chunk = bytes(data)
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes > self._high_water:
            # Let the socket's transport see it now: above its mark it pauses the protocol,
            # and the next `send()` waits for the reader instead of buffering the answer.
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Hand what is pending to the socket now."""
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._pending_bytes = 0
        if not self.inner.is_closing():
            self.inner.write(data)

    def close(self) -> None:
        self.flush()
        self.inner.close()

    def write_eof(self) -> None:
        self.flush()
        self.inner.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        self.inner.abort()

    def can_write_eof(self) -> bool:
        return self.inner.can_write_eof()

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.inner.get_protocol()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size() + self._pending_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)
        self._high_water = _high_water(self.inner)


def _high_water(transport: asyncio.Transport) -> int:
    """The size above which `transport` pauses its protocol's writing."""
    try:
        return transport.get_write_buffer_limits()[1]
    except NotImplementedError:  # a transport without flow control: uvicorn's own mark
        return HIGH_WATER_LIMIT


class _Coalescing:
    """Mixin for uvicorn's HTTP protocols: wrap the transport, unwrap it for WebSockets."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        wrapper = CoalescingTransport(
            cast(asyncio.Transport, transport), asyncio.get_running_loop()
        )
        super().connection_made(wrapper)  # type: ignore[misc]

    def handle_websocket_upgrade(self, *args: Any) -> None:
        # A WebSocket protocol manages its own writes: give it the socket's transport.
        wrapper = self.transport
        if isinstance(wrapper, CoalescingTransport):
            wrapper.flush()
            self.transport = wrapper.inner
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]


class CoalescingH11Protocol(_Coalescing, H11Protocol):
    """uvicorn's h11 protocol with coalesced writes."""


if HttpToolsProtocol is not None:

    class CoalescingHttpToolsProtocol(_Coalescing, HttpToolsProtocol):
        """uvicorn's httptools protocol with coalesced writes."""

else:  # pragma: no cover - httptools is installed with uvicorn[standard]
    CoalescingHttpToolsProtocol = None  # type: ignore[assignment, misc]


def protocol_class(http: str = "auto") -> type[asyncio.Protocol]:
    """The coalescing protocol for uvicorn's `--http` choice (`auto` prefers httptools).

    Raises:
        ValueError: `http` is not auto, h11 or httptools, or httptools is not installed.
    """
    if http not in ("auto", "h11", "httptools"):
        raise ValueError(f"Unknown HTTP implementation {http!r}: use auto, h11 or httptools.")
    if http == "h11" or (http == "auto" and CoalescingHttpToolsProtocol is None):
        return CoalescingH11Protocol
    if CoalescingHttpToolsProtocol is None:
        raise ValueError("httptools is not installed.")
    return CoalescingHttpToolsProtocol
