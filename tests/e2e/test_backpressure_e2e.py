"""Backpressure end to end: SSE readers that stop reading cost the server a bounded buffer.

The `burst` app's model yields a 16 MiB answer as 2,048 chunks without awaiting between
them, the worst case for write coalescing: unless the coalesced bytes reach uvicorn's flow
control, the whole answer is buffered in the server for a reader that has stopped reading.
"""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

import httpx
import pytest

from .conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

BASE = "/apps/burst/users/u1/sessions"
WORDS = 2048
WORD_BYTES = 8192  # the answer: WORDS * WORD_BYTES = 16 MiB
READERS = 2
# Without backpressure the server holds most of each answer (32 MiB for both readers); with
# it, a couple of high-water marks per reader. The kernel's socket buffers are not counted.
RSS_GROWTH_LIMIT = 8 * 1024 * 1024
# A reader with a small receive window, so that the kernel holds little on the client side.
SMALL_WINDOW = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)]


def _rss_bytes(pid: int) -> int:
    """The resident set size of process `pid` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


def _run_body(words: int) -> dict[str, object]:
    message = {"role": "user", "parts": [{"text": f"burst {words}"}]}
    return {"newMessage": message, "streaming": True, "createSession": True}


async def test_stalled_sse_readers_cost_the_server_a_bounded_buffer(
    server: ServerProcess, http: httpx.AsyncClient
) -> None:
    # Warm up the code paths of a burst run (imports, caches, pools) with a small answer.
    async with http.stream("POST", f"{BASE}/warm:run", json=_run_body(4)) as response:
        assert response.status_code == 200
        assert (await response.aread()).count(b"\n\n") == 4 + 2  # partials, final, end
    before = _rss_bytes(server.process.pid)

    transport = httpx.AsyncHTTPTransport(socket_options=SMALL_WINDOW)
    async with (
        httpx.AsyncClient(base_url=server.base_url, transport=transport, timeout=20) as slow,
        contextlib.AsyncExitStack() as streams,
    ):
        responses = []
        for index in range(READERS):
            response = await streams.enter_async_context(
                slow.stream("POST", f"{BASE}/stalled-{index}:run", json=_run_body(WORDS))
            )
            assert response.status_code == 200
            responses.append(response)  # the head is read; the body is not
        # The server's event loop answers this only after each run's writer has stopped.
        assert (await http.get("/healthz")).status_code == 200
        growth = _rss_bytes(server.process.pid) - before
        assert growth < RSS_GROWTH_LIMIT, (
            f"{READERS} stalled readers of {WORDS * WORD_BYTES >> 20} MiB answers grew the "
            f"server by {growth / 2**20:.1f} MiB"
        )

        # A reader that resumes gets the whole answer: the writer was waiting, not dropping.
        body = bytearray()
        async for chunk in responses[0].aiter_bytes():
            body += chunk
        frames = bytes(body).split(b"\n\n")
        assert frames[-1] == b""
        texts = [
            json.loads(f.removeprefix(b"data: "))["content"]["parts"][0]["text"]
            for f in frames
            if b"wwwwwwww" in f
        ]
        assert [int(text.split()[0]) for text in texts] == list(range(WORDS))
        assert frames[-2].startswith(b"event: end\n")
        assert b'"reason":"completed"' in frames[-2]
    # The other reader went away: its run is cancelled and the server carries on.
    assert (await http.get("/healthz")).status_code == 200
    assert "Traceback" not in server.log()
