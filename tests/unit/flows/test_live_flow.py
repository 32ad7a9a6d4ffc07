"""The live loop through Runner.run_live, with ScriptedModel's scripted live connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.genai import types

from app.agents import Agent, RunConfig
from app.events import Event
from app.flows.live_flow import MAX_RECONNECTS, live_connect_config
from app.plugins import BasePlugin
from app.testing import ScriptedModel, function_call
from app.testing.scripted_live import (
    LiveDrop,
    LiveGoAway,
    LiveInterrupt,
    ScriptedLlmConnection,
    live_connections,
)
from app.tools import ToolContext
from tests.unit.live_support import (
    APP,
    PCM_IN,
    TIMEOUT,
    LiveRun,
    describe,
    get_time,
    new_runner,
    squash,
    stored,
    turn_complete,
    user,
)


def connection(model: ScriptedModel, index: int = -1) -> ScriptedLlmConnection:
    return live_connections(model)[index]


TEXT = RunConfig(response_modalities=["TEXT"])


# --- connect config ---------------------------------------------------------------------------


def test_connect_config_defaults_to_audio_with_transcription_and_resumption() -> None:
    config = live_connect_config(RunConfig(), types.GenerateContentConfig(temperature=0.2))

    assert config.response_modalities == [types.Modality.AUDIO]
    assert config.input_audio_transcription is not None
    assert config.output_audio_transcription is not None
    assert config.session_resumption == types.SessionResumptionConfig()
    assert config.temperature == 0.2


def test_connect_config_text_has_no_transcription_and_keeps_run_options() -> None:
    speech = types.SpeechConfig(language_code="de-DE")
    run_config = RunConfig(
        response_modalities=["text"],
        speech_config=speech,
        proactivity=types.ProactivityConfig(proactive_audio=True),
        enable_affective_dialog=True,
        session_resumption=types.SessionResumptionConfig(handle="h-0"),
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        ),
        context_window_compression=types.ContextWindowCompressionConfig(trigger_tokens=1000),
    )
    config = live_connect_config(run_config, types.GenerateContentConfig())

    assert config.response_modalities == [types.Modality.TEXT]
    assert config.input_audio_transcription is None
    assert config.output_audio_transcription is None
    assert config.speech_config == speech
    assert config.proactivity == run_config.proactivity
    assert config.enable_affective_dialog is True
    assert config.session_resumption is not None
    assert config.session_resumption.handle == "h-0"
    assert config.realtime_input_config == run_config.realtime_input_config
    assert config.context_window_compression == run_config.context_window_compression


# --- turns ------------------------------------------------------------------------------------


async def test_text_turn_round_trip_streams_then_stores_text_and_markers() -> None:
    model = ScriptedModel(responses=["You said hello"])
    runner = await new_runner(Agent(name="bot", model=model, instruction="Be brief."))
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("hello"))
    events = await live.until(turn_complete)
    await live.close()

    assert [describe(e) for e in events] == [
        "user text=hello",
        "bot text~You ",
        "bot text~said ",
        "bot text~hello",
        "bot text=You said hello",
        "bot turn_complete",
    ]
    assert await stored(runner) == [
        "user text=hello",
        "bot text=You said hello",
        "bot turn_complete",
    ]
    sent = connection(model)
    assert [c.parts[0].text for c in sent.contents if c.parts] == ["hello"]
    assert sent.request.config.system_instruction == "Be brief."
    assert sent.closed


async def test_audio_in_gives_audio_and_transcriptions_out_and_stores_no_audio() -> None:
    model = ScriptedModel(responses=["Sunny and warm"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner)  # default modality: AUDIO

    for _ in range(5):
        live.queue.send_realtime(types.Blob(mime_type=PCM_IN, data=b"\x01\x00" * 320))
    live.queue.send_audio_stream_end()
    events = await live.until(turn_complete)
    await live.close()

    assert squash([describe(e) for e in events]) == [
        "user input~(3200 bytes heard)",
        "user input=(3200 bytes heard)",
        "bot audio~",
        "bot output~Sunny ",
        "bot output~and ",
        "bot output~warm",
        "bot output=Sunny and warm",
        "bot turn_complete",
    ]
    audio = [e for e in events if e.content and e.content.parts and e.content.parts[0].inline_data]
    assert len(audio) == 3
    blob = audio[0].content.parts[0].inline_data  # type: ignore[union-attr]
    assert blob is not None and blob.mime_type == "audio/pcm;rate=24000"
    assert blob.data is not None and len(blob.data) == 1920  # 40 ms of PCM16 at 24 kHz
    assert await stored(runner) == [
        "user input=(3200 bytes heard)",
        "bot output=Sunny and warm",
        "bot turn_complete",
    ]
    assert connection(model).blob_count == 5


async def test_activity_end_after_audio_ends_the_user_turn() -> None:
    model = ScriptedModel(responses=["ok"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner)

    live.queue.send_activity_start()
    live.queue.send_realtime(types.Blob(mime_type=PCM_IN, data=b"\x00" * 640))
    live.queue.send_activity_end()
    await live.until(turn_complete)
    await live.close()

    sent = connection(model)
    assert (sent.activity_starts, sent.activity_ends, sent.blob_bytes) == (1, 1, 640)


async def test_history_is_sent_before_live_input() -> None:
    model = ScriptedModel(responses=["earlier answer", "live answer"])
    runner = await new_runner(Agent(name="bot", model=model))
    async for _ in runner.run_async(user_id="u", session_id="s", new_message=user("earlier")):
        pass
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("now"))
    await live.until(turn_complete)
    await live.close()

    sent = connection(model)
    assert [(c.role, c.parts[0].text) for c in sent.history if c.parts] == [
        ("user", "earlier"),
        ("model", "earlier answer"),
    ]


# --- tools ------------------------------------------------------------------------------------


class Recorder(BasePlugin):
    def __init__(self) -> None:
        super().__init__(name="recorder")
        self.calls: list[str] = []

    async def on_event_callback(self, *, invocation_context: Any, event: Event) -> None:
        if not event.partial:
            self.calls.append(f"on_event:{describe(event)}")

    async def before_tool_callback(self, *, tool: Any, tool_args: Any, tool_context: Any) -> None:
        self.calls.append(f"before_tool:{tool.name}")

    async def after_tool_callback(self, **kwargs: Any) -> None:
        self.calls.append("after_tool")


async def test_tool_call_round_trip_runs_callbacks_and_answers_the_model() -> None:
    model = ScriptedModel(responses=[function_call("get_time", {"tz": "UTC"}), "It is noon in UTC"])
    agent_calls: list[str] = []

    def before_tool(tool: Any, args: dict[str, Any], tool_context: ToolContext) -> None:
        agent_calls.append(f"agent_before_tool:{args}")

    plugin = Recorder()
    agent = Agent(name="bot", model=model, tools=[get_time], before_tool_callback=before_tool)
    runner = await new_runner(agent, plugins=[plugin])
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("what time is it?"))
    events = await live.until(turn_complete)
    await live.close()

    assert squash([describe(e) for e in events]) == [
        "user text=what time is it?",
        "bot call get_time",
        "bot response get_time",
        "bot text~It ",
        "bot text~is ",
        "bot text~noon ",
        "bot text~in ",
        "bot text~UTC",
        "bot text=It is noon in UTC",
        "bot turn_complete",
    ]
    assert plugin.calls[:5] == [
        "on_event:user text=what time is it?",
        "on_event:bot call get_time",
        "before_tool:get_time",
        "after_tool",
        "on_event:bot response get_time",
    ]
    assert agent_calls == ["agent_before_tool:{'tz': 'UTC'}"]
    sent = connection(model).contents[-1]
    response = sent.parts[0].function_response  # type: ignore[index]
    assert response is not None
    assert response.response == {"tz": "UTC", "time": "12:00"}
    call = events[1].get_function_calls()[0]
    assert response.id == call.id and call.id
    assert await stored(runner) == [
        "user text=what time is it?",
        "bot call get_time",
        "bot response get_time",
        "bot text=It is noon in UTC",
        "bot turn_complete",
    ]


# --- interruption, resumption, drops ----------------------------------------------------------


async def test_interruption_is_streamed_and_stored_as_a_marker() -> None:
    model = ScriptedModel(responses=[LiveInterrupt("one two three four"), "sure"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner)

    live.queue.send_content(user("tell me a story"))
    events = await live.until(lambda e: bool(e.interrupted))
    live.queue.send_content(user("stop"))
    await live.until(turn_complete)
    await live.close()

    assert squash([describe(e) for e in events]) == [
        "user text=tell me a story",
        "bot audio~",
        "bot output~one ",
        "bot output~two ",
        "bot output=one two ",
        "bot interrupted",
    ]
    assert await stored(runner) == [
        "user text=tell me a story",
        "bot output=one two ",
        "bot interrupted",
        "user text=stop",
        "bot output=sure",
        "bot turn_complete",
    ]


async def test_go_away_resumes_on_a_new_connection_with_the_last_handle() -> None:
    model = ScriptedModel(responses=["first", LiveGoAway(), "second"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("one"))
    await live.until(turn_complete)
    live.queue.send_content(user("two"))
    await live.until(turn_complete)
    await live.close()

    first, second = live_connections(model)
    assert first.resumed_with is None and first.closed
    assert second.resumed_with is not None and second.resumed_with.startswith("scripted-handle-")
    assert second.history == []  # the resumed session already has it
    assert [c.parts[0].text for c in second.contents if c.parts] == ["two"]
    assert await stored(runner) == [
        "user text=one",
        "bot text=first",
        "bot turn_complete",
        "user text=two",
        "bot text=second",
        "bot turn_complete",
    ]


async def test_dropped_connection_is_resumed_with_the_handle() -> None:
    model = ScriptedModel(responses=["first", LiveDrop(), "second"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("one"))
    await live.until(turn_complete)
    live.queue.send_content(user("two"))
    await live.until(turn_complete)
    await live.close()

    assert len(live_connections(model)) == 2
    assert "bot error 1011" not in live.lines()


async def test_drop_without_a_handle_ends_the_run_with_an_error_event() -> None:
    model = ScriptedModel(responses=[LiveDrop("1011", "backend gone")])
    runner = await new_runner(Agent(name="bot", model=model))
    # A caller-provided config without handles in the responses: the scripted connection
    # only hands out handles after a completed turn, and the drop comes first.
    live = LiveRun(runner, TEXT)

    events = await live.until(lambda e: bool(e.error_code))
    async with asyncio.timeout(1.0):
        await live.task

    assert events[-1].error_code == "1011"
    assert events[-1].error_message == "backend gone"
    assert await stored(runner) == ["bot error 1011"]
    assert len(live_connections(model)) == 1


async def test_reconnections_are_bounded_when_no_progress_is_made() -> None:
    model = ScriptedModel(responses=["first", *[LiveDrop()] * (MAX_RECONNECTS + 1)])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("one"))
    await live.until(turn_complete)
    events = await live.until(lambda e: bool(e.error_code))
    async with asyncio.timeout(1.0):
        await live.task

    assert "gave up after 3 reconnections" in (events[-1].error_message or "")
    assert len(live_connections(model)) == MAX_RECONNECTS + 1


# --- closing ----------------------------------------------------------------------------------


async def test_client_close_ends_the_run_and_closes_the_model_connection() -> None:
    model = ScriptedModel(responses=["hi"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner)

    live.queue.send_realtime(types.Blob(mime_type=PCM_IN, data=b"\x00" * 640))
    await live.close()  # bounded: fails if the run takes over a second to end

    assert connection(model).closed
    assert model.calls == 0  # no turn ended, nothing was answered
    assert await stored(runner) == []


async def test_cancelling_the_consumer_closes_the_model_connection() -> None:
    model = ScriptedModel(responses=["hi"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner)
    live.queue.send_content(user("hello"))
    await live.until(turn_complete)

    live.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(1.0):
            await live.task

    assert connection(model).closed
    session = await runner.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None and len(session.events) == 3


async def test_a_failing_tool_plugin_fails_the_run_and_closes_the_connection() -> None:
    class Broken(BasePlugin):
        async def before_tool_callback(self, **kwargs: Any) -> None:
            raise RuntimeError("boom")

    model = ScriptedModel(responses=[function_call("get_time", {"tz": "UTC"})])
    runner = await new_runner(
        Agent(name="bot", model=model, tools=[get_time]), plugins=[Broken(name="broken")]
    )
    live = LiveRun(runner, TEXT)
    live.queue.send_content(user("time?"))

    with pytest.raises(RuntimeError, match="boom"):
        async with asyncio.timeout(TIMEOUT):
            await live.task
    assert connection(model).closed


async def test_each_connection_counts_as_one_model_call() -> None:
    model = ScriptedModel(responses=["first", LiveGoAway(), "second"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner, RunConfig(response_modalities=["TEXT"], max_llm_calls=1))

    live.queue.send_content(user("one"))
    await live.until(turn_complete)
    with pytest.raises(Exception, match="Max number of llm calls"):
        async with asyncio.timeout(TIMEOUT):
            await live.task


async def test_callable_items_see_the_conversation_of_the_connection() -> None:
    seen: list[list[str]] = []

    def reply(request: Any) -> Any:
        seen.append([f"{c.role}:{describe_part(c.parts[0])}" for c in request.contents])
        if len(seen) == 1:
            return function_call("get_time", {"tz": "UTC"})
        return "noon"

    model = ScriptedModel(responses=[reply, reply])
    runner = await new_runner(Agent(name="bot", model=model, tools=[get_time]))
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("time?"))
    await live.until(turn_complete)
    await live.close()

    assert seen == [
        ["user:time?"],
        ["user:time?", "model:call get_time", "user:response get_time"],
    ]


def describe_part(part: types.Part) -> str:
    if part.function_call:
        return f"call {part.function_call.name}"
    if part.function_response:
        return f"response {part.function_response.name}"
    return part.text or ""


class FailingSend(ScriptedLlmConnection):
    """Fails the second text turn it is sent, as a connection dying mid-send does."""

    sends = 0

    async def send_content(self, content: types.Content) -> None:
        if not any(p.function_response for p in content.parts or []):
            FailingSend.sends += 1
            if FailingSend.sends == 2:
                raise ConnectionError("link lost while sending")
        await super().send_content(content)


class FlakyModel(ScriptedModel):
    def connect(self, llm_request: Any) -> Any:
        from app.testing.scripted_live import connect_scripted

        return connect_scripted(self, llm_request, self._next_item, connection_class=FailingSend)


async def test_a_turn_lost_mid_send_is_resent_after_resuming_and_stored_once() -> None:
    FailingSend.sends = 0
    model = FlakyModel(responses=["first", "second"])
    runner = await new_runner(Agent(name="bot", model=model))
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("one"))
    await live.until(turn_complete)
    live.queue.send_content(user("two"))
    await live.until(turn_complete)
    await live.close()

    _, second = live_connections(model)
    assert second.resumed_with is not None
    assert [c.parts[0].text for c in second.contents if c.parts] == ["two"]
    assert await stored(runner) == [
        "user text=one",
        "bot text=first",
        "bot turn_complete",
        "user text=two",
        "bot text=second",
        "bot turn_complete",
    ]


async def test_transfer_hands_the_live_session_to_the_target_agent() -> None:
    helper_model = ScriptedModel(responses=["helper here", "hi again"])
    helper = Agent(name="helper", model=helper_model, description="Helps.")
    root_model = ScriptedModel(
        responses=[function_call("transfer_to_agent", {"agent_name": "helper"})]
    )
    runner = await new_runner(Agent(name="root", model=root_model, sub_agents=[helper]))
    live = LiveRun(runner, TEXT)

    live.queue.send_content(user("I need help"))
    # The helper's history ends with the user's request, so its model answers it at once.
    transfer = await live.until(turn_complete)
    live.queue.send_content(user("hello helper"))
    events = await live.until(turn_complete)
    await live.close()

    assert squash([describe(e) for e in transfer]) == [
        "user text=I need help",
        "root call transfer_to_agent",
        "root response transfer_to_agent",
        "helper text~helper ",
        "helper text~here",
        "helper text=helper here",
        "helper turn_complete",
    ]
    assert [describe(e) for e in events][-2:] == ["helper text=hi again", "helper turn_complete"]
    assert connection(root_model).closed
    assert [c.parts[0].text for c in connection(helper_model).contents if c.parts] == [
        "hello helper"
    ]
