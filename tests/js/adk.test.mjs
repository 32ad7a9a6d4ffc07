// assistant-ui's ADK adapter (@assistant-ui/react-google-adk, pinned in package.json) against
// a real agent-service: createAdkStream in direct mode on /adk/run_sse, and the session
// adapter on /adk/apps/... . Run by tests/frontends/test_adk_client.py with ADK_URL set.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AdkEventAccumulator,
  createAdkSessionAdapter,
  createAdkStream,
} from "@assistant-ui/react-google-adk";

const api = process.env.ADK_URL;
assert.ok(api, "ADK_URL must point at the server's /adk");
const appName = "scripted";
const userId = "node-user";
const sessions = createAdkSessionAdapter({ apiUrl: api, appName, userId });
const stream = createAdkStream({ api, appName, userId });

let counter = 0;

/** Send one human message on a session (created by the adapter when none is given). */
async function send(text, { sessionId, stateDelta } = {}) {
  const initialize = async () => {
    if (sessionId) return { remoteId: sessionId, externalId: sessionId };
    const created = await sessions.adapter.initialize(`thread-${counter}`);
    sessionId = created.externalId;
    return created;
  };
  counter += 1;
  const message = { id: `m${counter}`, type: "human", content: text };
  const events = [];
  const accumulator = new AdkEventAccumulator([message]);
  let messages = [];
  const generator = await stream([message], {
    abortSignal: AbortSignal.timeout(20_000),
    initialize,
    ...(stateDelta ? { stateDelta } : {}),
  });
  for await (const event of generator) {
    events.push(event);
    messages = accumulator.processEvent(event);
  }
  return { sessionId, events, messages, accumulator };
}

function aiText(messages) {
  return messages
    .filter((m) => m.type === "ai")
    .map((m) => (typeof m.content === "string" ? m.content : m.content.map((p) => p.text ?? "").join("")))
    .join("|");
}

test("a chat: the adapter creates the session, the stream parses, the answer accumulates", async () => {
  const { sessionId, events, messages } = await send("chat hello");
  const final = events.filter((e) => !e.partial); // assistant-ui always asks for streaming
  assert.equal(final.length, 1);
  assert.equal(final[0].author, "scripted");
  assert.equal(aiText(messages), "ok");
  const listed = await sessions.adapter.list();
  assert.ok(listed.threads.some((t) => t.remoteId === sessionId));
  const fetched = await sessions.adapter.fetch(sessionId);
  assert.equal(fetched.remoteId, sessionId);
  const loaded = await sessions.load(sessionId);
  assert.deepEqual(
    loaded.messages.map((m) => m.type),
    ["human", "ai"],
  );
  assert.equal(aiText(loaded.messages), "ok");
});

test("token streaming: partials then one final event, no duplicated text", async () => {
  const { events, messages } = await send("stream please");
  assert.deepEqual(
    events.map((e) => Boolean(e.partial)),
    [true, true, true, true, false],
  );
  assert.equal(aiText(messages), "one two three four");
});

test("a tool call: call, response, then the answer", async () => {
  const { events, messages } = await send("tool weather");
  const call = events[0].content.parts[0].functionCall;
  assert.equal(call.name, "get_weather");
  assert.deepEqual(call.args, { city: "Paris" });
  const response = events[1].content.parts[0].functionResponse;
  assert.equal(response.id, call.id);
  const ai = messages.filter((m) => m.type === "ai");
  assert.ok(ai.some((m) => m.tool_calls?.some((c) => c.name === "get_weather")));
  const tool = messages.find((m) => m.type === "tool");
  assert.equal(tool.tool_call_id, call.id);
  assert.match(aiText(messages), /It is sunny in Paris\./);
});

test("a state delta from a tool and one sent by the client", async () => {
  const { sessionId, accumulator } = await send("state blue");
  assert.deepEqual(accumulator.getStateDelta(), { color: "blue" });
  await send("chat again", { sessionId, stateDelta: { mood: "calm" } });
  const res = await fetch(`${api}/apps/${appName}/users/${userId}/sessions/${sessionId}`);
  const session = await res.json();
  assert.equal(session.state.color, "blue");
  assert.equal(session.state.mood, "calm");
});

test("a model error: the last event carries errorCode and errorMessage", async () => {
  const { events } = await send("boom");
  assert.equal(events.length, 1);
  assert.equal(events[0].errorCode, "model_error");
  assert.equal(events[0].errorMessage, "the model backend is down");
});

test("artifacts through the session adapter", async () => {
  const { sessionId, accumulator } = await send("save a note");
  assert.deepEqual(accumulator.getArtifactDelta(), { "note.txt": 0 });
  assert.deepEqual(await sessions.artifacts.list(sessionId), ["note.txt"]);
  assert.deepEqual(await sessions.artifacts.listVersions(sessionId, "note.txt"), [0]);
  const artifact = await sessions.artifacts.load(sessionId, "note.txt");
  assert.equal(JSON.stringify(artifact).includes("hello artifact"), true);
  await sessions.artifacts.delete(sessionId, "note.txt");
  assert.deepEqual(await sessions.artifacts.list(sessionId), []);
  await sessions.adapter.delete(sessionId);
  await assert.rejects(sessions.load(sessionId), /Failed to load session: 404/);
});

test("a missing session is an HTTP error before any event", async () => {
  await assert.rejects(send("chat", { sessionId: "no-such-session" }), /ADK request failed: 404/);
});
