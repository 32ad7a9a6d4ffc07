// The Vercel AI SDK (`ai` 6, pinned in package-lock.json) against a real agent-service.
//
// `DefaultChatTransport.sendMessages` + `readUIMessageStream` is the code path of `useChat`:
// every chunk is parsed against the SDK's own schema, and a chunk out of place (a delta
// without its start, a result for an unknown tool call) is an error. Errors reach the
// `onError` callback rather than throwing, so each test asserts the exact list of them.
//
// Run by tests/frontends/test_ai_sdk.py with AGENT_SERVICE_URL set to a running server
// serving the `scripted` fixture agent.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { DefaultChatTransport, readUIMessageStream } from "ai";

const BASE = process.env.AGENT_SERVICE_URL;
assert.ok(BASE, "AGENT_SERVICE_URL must point at a running agent-service");
const API = `${BASE}/apps/scripted/users/u-js/ai-sdk/chat`;

function userMessage(text) {
  return { id: randomUUID(), role: "user", parts: [{ type: "text", text }] };
}

// The transport as the README configures it (the reconnect URL spelled out).
function transport(extraBody = {}) {
  return new DefaultChatTransport({
    api: API,
    body: extraBody,
    prepareReconnectToStreamRequest: ({ id }) => ({ api: `${API}/${id}/stream` }),
  });
}

// Read a UI message stream to its end: the snapshots, the last message, the errors.
async function read(stream) {
  const errors = [];
  const snapshots = [];
  for await (const message of readUIMessageStream({ stream, onError: (e) => errors.push(e) })) {
    snapshots.push(message);
  }
  return { snapshots, message: snapshots.at(-1), errors };
}

async function chat(text, { chatId = randomUUID(), body = {}, abortSignal } = {}) {
  const stream = await transport(body).sendMessages({
    chatId,
    messages: [userMessage(text)],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal,
  });
  return { chatId, stream };
}

function parts(message) {
  // Drop what varies from run to run (call ids) and unset keys, to compare the rest.
  return message.parts.map(({ toolCallId, ...rest }) => {
    if (toolCallId !== undefined) assert.match(toolCallId, /\S/);
    return JSON.parse(JSON.stringify(rest));
  });
}

test("a chat: one step, one text part", async () => {
  const { stream } = await chat("chat");
  const { message, errors } = await read(stream);
  assert.deepEqual(errors, []);
  assert.equal(message.role, "assistant");
  assert.match(message.id, /^e-/); // the invocation id
  assert.deepEqual(parts(message), [
    { type: "step-start" },
    { type: "text", text: "ok", state: "done" },
  ]);
});

test("a token-streamed chat arrives in deltas, and its final text only once", async () => {
  const { stream } = await chat("stream please");
  const { snapshots, message, errors } = await read(stream);
  assert.deepEqual(errors, []);
  const texts = snapshots.map((m) => m.parts.find((p) => p.type === "text")?.text);
  assert.ok(texts.includes("one "), `no partial text among ${JSON.stringify(texts)}`);
  assert.deepEqual(parts(message), [
    { type: "step-start" },
    { type: "text", text: "one two three four", state: "done" },
  ]);
});

test("a tool call is a dynamic-tool part with its output, then the answer in a new step", async () => {
  const { stream } = await chat("tool");
  const { message, errors } = await read(stream);
  assert.deepEqual(errors, []);
  assert.deepEqual(parts(message), [
    { type: "step-start" },
    {
      type: "dynamic-tool",
      toolName: "get_weather",
      state: "output-available",
      input: { city: "Paris" },
      output: { city: "Paris", forecast: "sunny" },
    },
    { type: "step-start" },
    { type: "text", text: "It is sunny in Paris.", state: "done" },
  ]);
});

test("a state delta is a data-state-delta part", async () => {
  const { stream } = await chat("state");
  const { message, errors } = await read(stream);
  assert.deepEqual(errors, []);
  const data = message.parts.filter((p) => p.type === "data-state-delta");
  assert.deepEqual(data, [{ type: "data-state-delta", data: { color: "blue" } }]);
  assert.equal(message.parts.at(-1).text, "Noted: blue.");
});

test("a model error reaches onError with the problem's detail", async () => {
  const { stream } = await chat("boom");
  const { errors } = await read(stream);
  assert.deepEqual(
    errors.map((e) => e.message),
    ["the model backend is down"],
  );
});

test("the chat goes on from the stored session", async () => {
  const chatId = randomUUID();
  await read((await chat("chat", { chatId })).stream);
  const { message, errors } = await read((await chat("tool", { chatId })).stream);
  assert.deepEqual(errors, []);
  assert.equal(message.parts.at(-1).text, "It is sunny in Paris.");
  const events = await (
    await fetch(`${BASE}/apps/scripted/users/u-js/sessions/${chatId}/events`)
  ).json();
  assert.deepEqual(
    events.events.filter((e) => e.author === "user" && e.content.parts[0].text).length,
    2,
  );
});

test("resume: reconnectToStream replays the active run, then follows it to its end", async () => {
  const chatId = randomUUID();
  assert.equal(await transport().reconnectToStream({ chatId }), null); // 204: nothing active

  const controller = new AbortController();
  const { stream } = await chat("pause", {
    chatId,
    body: { onDisconnect: "continue" },
    abortSignal: controller.signal,
  });
  // Read until the slow tool is called, then drop the connection (a page reload).
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the run ended before its tool call");
    if (value.type === "tool-input-available") break;
  }
  controller.abort();
  await reader.cancel().catch(() => {});

  // The run is still going (pause_tool waits 1.5 s): a second message is refused.
  await assert.rejects(chat("chat", { chatId }), /run_in_progress/);

  const resumed = await transport().reconnectToStream({ chatId });
  assert.ok(resumed, "expected the active run's stream, got 204");
  const { message, errors } = await read(resumed);
  assert.deepEqual(errors, []);
  assert.deepEqual(parts(message), [
    { type: "step-start" },
    {
      type: "dynamic-tool",
      toolName: "pause_tool",
      state: "output-available",
      input: {},
      output: { paused: 1.5 },
    },
    { type: "step-start" },
    { type: "text", text: "resumed", state: "done" },
  ]);
  assert.equal(await transport().reconnectToStream({ chatId }), null); // it has ended
});

test("a long-running tool's output comes from the client, as addToolOutput sends it", async () => {
  const chatId = randomUUID();
  const question = userMessage("ask");
  const first = await read((await chat("ask", { chatId })).stream);
  assert.deepEqual(first.errors, []);
  const call = first.message.parts.find((p) => p.type === "dynamic-tool");
  assert.equal(call.toolName, "ask_human");
  assert.equal(call.state, "input-available"); // the client's to answer

  // What `addToolOutput({tool, toolCallId, output})` does to the message, then the request
  // useChat sends: the whole chat, ending with that assistant message.
  const answered = structuredClone(first.message);
  Object.assign(answered.parts.find((p) => p.toolCallId === call.toolCallId), {
    state: "output-available",
    output: { city: "Lyon" },
  });
  const stream = await transport().sendMessages({
    chatId,
    messages: [question, answered],
    trigger: "submit-message",
    messageId: answered.id,
    abortSignal: undefined,
  });
  const second = await read(stream);
  assert.deepEqual(second.errors, []);
  assert.equal(second.message.parts.at(-1).text, "Thanks for the answer.");
});

test("cancel: the run's own cancel route ends the stream with abort, then finish", async () => {
  const { chatId, stream } = await chat("slow");
  const chunks = [];
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the run ended before its tool call");
    chunks.push(value);
    if (value.type === "tool-input-available") break;
  }
  const messageId = chunks[0].messageId; // the invocation id
  const cancel = await fetch(
    `${BASE}/apps/scripted/users/u-js/sessions/${chatId}/runs/${messageId}:cancel`,
    { method: "POST" },
  );
  assert.equal(cancel.status, 200);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  assert.deepEqual(
    chunks.map((c) => c.type),
    ["start", "start-step", "tool-input-available", "finish-step", "abort", "finish"],
  );
  // The session stays usable: the next message runs.
  const { message, errors } = await read((await chat("chat", { chatId })).stream);
  assert.deepEqual(errors, []);
  assert.equal(message.parts.at(-1).text, "ok");
});

test("bad input is a 422 the transport reports", async () => {
  await assert.rejects(chat("chat", { chatId: "a/b" }), /invalid_request/);
});
