"""LiveRequestQueue and LiveRequest: what a client sends into a live session."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from google.genai import types
from pydantic import ValidationError

from app.agents import LiveRequest, LiveRequestQueue


async def drain(queue: LiveRequestQueue) -> list[LiveRequest]:
    """Read until the close request (inclusive); bounded so a missing close fails fast."""
    received: list[LiveRequest] = []
    async with asyncio.timeout(5):
        while True:
            request = await queue.get()
            received.append(request)
            if request.close:
                return received


def user_text(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def test_send_helpers_enqueue_matching_requests_in_order() -> None:
    queue = LiveRequestQueue()
    blob = types.Blob(mime_type="audio/pcm;rate=16000", data=b"\x00\x01")

    queue.send_content(user_text("hello"))
    queue.send_realtime(blob)
    queue.send_activity_start()
    queue.send_activity_end()
    queue.send_audio_stream_end()
    queue.send(LiveRequest(content=user_text("raw")))
    queue.close()

    received = await drain(queue)

    assert received == [
        LiveRequest(content=user_text("hello")),
        LiveRequest(blob=blob),
        LiveRequest(activity_start=types.ActivityStart()),
        LiveRequest(activity_end=types.ActivityEnd()),
        LiveRequest(audio_stream_end=True),
        LiveRequest(content=user_text("raw")),
        LiveRequest(close=True),
    ]


async def test_get_waits_for_a_later_send() -> None:
    queue = LiveRequestQueue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # let the consumer block on the empty queue
    assert not waiter.done()

    queue.send_content(user_text("late"))

    async with asyncio.timeout(5):
        assert (await waiter).content == user_text("late")


async def test_close_is_delivered_after_pending_requests() -> None:
    queue = LiveRequestQueue()
    queue.send_content(user_text("one"))
    queue.send_content(user_text("two"))

    queue.close()

    assert queue.closed
    assert [r.content for r in await drain(queue)] == [user_text("one"), user_text("two"), None]


async def test_sends_after_close_are_ignored() -> None:
    queue = LiveRequestQueue()
    queue.close()

    queue.send_content(user_text("too late"))
    queue.send_realtime(types.Blob(mime_type="audio/pcm", data=b"\x00"))
    queue.send_activity_start()

    assert await drain(queue) == [LiveRequest(close=True)]
    assert queue.closed


async def test_closing_twice_delivers_a_single_close() -> None:
    queue = LiveRequestQueue()
    queue.close()
    queue.close()

    assert await drain(queue) == [LiveRequest(close=True)]
    extra = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # one step: a queued item would complete the task now
    assert not extra.done()
    extra.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await extra


async def test_sending_a_close_request_closes_the_queue() -> None:
    queue = LiveRequestQueue()
    queue.send_content(user_text("bye"))

    queue.send(LiveRequest(close=True))
    queue.send_content(user_text("ignored"))

    assert queue.closed
    assert [r.close for r in await drain(queue)] == [False, True]


@pytest.mark.parametrize(
    "payload",
    [
        '{"activityStart": {}, "audioStreamEnd": true, "blob": {"mimeType": "audio/pcm",'
        ' "data": "AAE="}}',
        '{"activity_start": {}, "audio_stream_end": true, "blob": {"mime_type": "audio/pcm",'
        ' "data": "AAE="}}',
    ],
    ids=["camelCase", "snake_case"],
)
def test_live_request_json_accepts_camel_and_snake_case_keys(payload: str) -> None:
    request = LiveRequest.model_validate_json(payload)

    assert request.activity_start == types.ActivityStart()
    assert request.audio_stream_end is True
    assert request.blob == types.Blob(mime_type="audio/pcm", data=b"\x00\x01")
    assert request.close is False


def test_live_request_json_round_trips_content_and_close() -> None:
    request = LiveRequest(content=user_text("hi"), close=True)

    assert LiveRequest.model_validate_json(request.model_dump_json(by_alias=True)) == request


def test_live_request_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="shout"):
        LiveRequest.model_validate_json('{"shout": "hello"}')
