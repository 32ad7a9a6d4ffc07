"""Coalesced writes: what one event-loop pass writes reaches the socket as one write."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from app.server.protocols import (
    CoalescingH11Protocol,
    CoalescingHttpToolsProtocol,
    CoalescingTransport,
    protocol_class,
)


class RecordingTransport(asyncio.Transport):
    """A transport that records writes instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 7


async def test_writes_of_one_loop_pass_are_sent_together() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.writelines([b"a", b"", b"b"])
    assert inner.writes == []
    assert transport.get_write_buffer_size() == 7 + 21
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nab"]
    transport.write(b"c")
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"c"]


async def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"] and inner.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert inner.writes == [b"last words"]

    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == [] and inner.aborted


async def test_nothing_is_written_to_a_closing_transport() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"too late")
    inner.closed = True  # the peer went away meanwhile
    await asyncio.sleep(0)
    assert inner.writes == []


def test_protocol_choice() -> None:
    assert protocol_class("h11") is CoalescingH11Protocol
    assert protocol_class("httptools") is CoalescingHttpToolsProtocol
    assert protocol_class() is CoalescingHttpToolsProtocol
    with pytest.raises(ValueError, match="Unknown HTTP implementation"):
        protocol_class("zttp")


# --- on a real socket, through uvicorn ------------------------------------------------------


async def streaming_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Head and two chunks at once, then (after a pause) two more chunks and the end."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one;", "more_body": True})
    await send({"type": "http.response.body", "body": b"two;", "more_body": True})
    await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b"three;", "more_body": True})
    await send({"type": "http.response.body", "body": b"four", "more_body": False})


@pytest.fixture(params=["h11", "httptools"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[int, list[bytes]]]:
    """uvicorn serving `streaming_app` with a coalescing protocol that records socket writes."""
    writes: list[bytes] = []

    class Recording(protocol_class(request.param)):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            inner = self.transport.inner
            send = inner.write

            def write(data: bytes) -> None:
                writes.append(bytes(data))
                send(data)

            inner.write = write

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(streaming_app, http=Recording, log_level="warning", loop="asyncio")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port, writes
    finally:
        server.should_exit = True
        await serving


async def test_a_streamed_response_takes_one_write_per_loop_pass(
    served: tuple[int, list[bytes]],
) -> None:
    port, writes = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
    for _ in range(2):  # a second request on the same (kept-alive) connection
        del writes[:]
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        body = await reader.readuntil(b"0\r\n\r\n")
        assert body == b"4\r\none;\r\n4\r\ntwo;\r\n6\r\nthree;\r\n4\r\nfour\r\n0\r\n\r\n"
        # Head + "one;" + "two;" in one write; "three;" + "four" + the last chunk in another.
        assert len(writes) == 2, writes
        assert writes[0].endswith(b"4\r\none;\r\n4\r\ntwo;\r\n")
        assert writes[1] == b"6\r\nthree;\r\n4\r\nfour\r\n0\r\n\r\n"
    writer.close()
    await writer.wait_closed()
