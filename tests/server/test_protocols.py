"""Coalesced writes: what one event-loop pass writes reaches the socket as one write.

And the writer still waits for a slow reader: uvicorn's flow control sees the coalesced bytes.
"""

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

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16, 64)


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


async def test_more_than_the_high_water_mark_is_handed_to_the_socket_at_once() -> None:
    inner = RecordingTransport()  # high-water mark 64 bytes
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"h" * 40)
    transport.write(memoryview(b"b" * 24))
    assert inner.writes == []  # 64 bytes: not above the mark yet
    transport.write(b"!")
    assert inner.writes == [b"h" * 40 + b"b" * 24 + b"!"]
    assert transport.get_write_buffer_size() == 7
    transport.write(b"x" * 100)  # one write larger than the mark goes at once too
    assert inner.writes[1:] == [b"x" * 100]
    transport.write(b"tail")
    await asyncio.sleep(0)
    assert inner.writes[2:] == [b"tail"]


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


# --- backpressure: a reader that stops reading holds up the writer, not the whole answer -----

CHUNK_BYTES = 4096
CHUNKS = 2048  # an 8 MiB answer
# Above the transport's high-water mark (64 KiB) the protocol is paused; what is pending
# here is handed over as soon as it passes that mark: at most two marks plus one frame.
BUFFER_BOUND = 2 * 65536 + CHUNK_BYTES + 64
WAIT_SECONDS = 10.0


def _chunk(index: int) -> bytes:
    return b"%08d" % index + b"x" * (CHUNK_BYTES - 8)


class _Burst:
    """An ASGI app that sends a large answer in chunks, never awaiting anything but `send`."""

    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for index in range(CHUNKS):
            await send({"type": "http.response.body", "body": _chunk(index), "more_body": True})
            self.sent += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _ReadyServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_a_stalled_reader_costs_a_bounded_buffer_not_the_answer(http: str) -> None:
    app = _Burst()
    paused = asyncio.Event()
    buffered: list[int] = []  # the transport's buffered bytes after each socket write

    class Watched(protocol_class(http)):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            # Keep the kernel's share small, so the writer meets the stall after a few chunks.
            transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 16384
            )
            super().connection_made(transport)
            coalescing = self.transport
            inner = coalescing.inner
            send = inner.write

            def write(data: bytes) -> None:
                send(data)
                buffered.append(coalescing.get_write_buffer_size())

            inner.write = write

        def pause_writing(self) -> None:
            super().pause_writing()
            paused.set()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _ReadyServer(uvicorn.Config(app, http=Watched, log_level="warning", loop="asyncio"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # a small window
    client.setblocking(False)
    writer: asyncio.StreamWriter | None = None
    try:
        await asyncio.wait_for(server.ready.wait(), WAIT_SECONDS)
        await asyncio.get_running_loop().sock_connect(client, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=client, limit=16384)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")

        # The client reads nothing: the writer must stop, with a bounded buffer behind it.
        await asyncio.wait_for(paused.wait(), WAIT_SECONDS)
        assert app.sent < CHUNKS // 4, f"the writer ran ahead: {app.sent} of {CHUNKS} chunks"
        assert max(buffered) <= BUFFER_BOUND, max(buffered)

        # Reading resumes the writer; the whole answer arrives, in order.
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_SECONDS)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        for index in range(CHUNKS):
            frame = await asyncio.wait_for(
                reader.readexactly(len(b"1000\r\n") + CHUNK_BYTES + 2), WAIT_SECONDS
            )
            assert frame == b"1000\r\n" + _chunk(index) + b"\r\n"
        assert await asyncio.wait_for(reader.readexactly(5), WAIT_SECONDS) == b"0\r\n\r\n"
        assert app.sent == CHUNKS
        assert max(buffered) <= BUFFER_BOUND, max(buffered)
    finally:
        # A failed check must not leave the server waiting on this response.
        if writer is None:
            client.close()
        else:
            writer.close()
            await writer.wait_closed()
        server.should_exit = True
        await serving
