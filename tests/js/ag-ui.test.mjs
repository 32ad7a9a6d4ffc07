// AG-UI: the real `@ag-ui/client` HttpAgent (1.0.0 and 0.0.59, event verifier on: it is part
// of every runAgent) against a running agent-service. Run by tests/frontends/test_ag_ui_clients.py
// with AGENT_SERVICE_URL set.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import { HttpAgent as HttpAgent1 } from "@ag-ui/client";
import { HttpAgent as HttpAgent059 } from "ag-ui-client-0.0.59";

const BASE = process.env.AGENT_SERVICE_URL;
assert.ok(BASE, "AGENT_SERVICE_URL is not set");

const CLIENTS = { "1.0.0": HttpAgent1, "0.0.59": HttpAgent059 };

function agentFor(HttpAgent, app = "scripted", threadId = `t-${randomUUID()}`) {
  return new HttpAgent({ url: `${BASE}/apps/${app}/users/js/ag-ui`, threadId });
}

/** Add a user message and run; return the event types seen and the run's error events. */
async function say(agent, text, forwardedProps = {}, onEvent = () => {}) {
  agent.addMessage({ id: randomUUID(), role: "user", content: text });
  const types = [];
  const errors = [];
  const result = await agent.runAgent(
    { runId: randomUUID(), forwardedProps },
    {
      onEvent: ({ event }) => {
        types.push(event.type);
        onEvent(event);
      },
      onRunErrorEvent: ({ event }) => {
        errors.push(event);
      },
    },
  );
  return { types, errors, result };
}

function roles(agent) {
  return agent.messages.map((m) => m.role);
}

for (const [version, HttpAgent] of Object.entries(CLIENTS)) {
  describe(`@ag-ui/client ${version}`, () => {
    test("chat, twice on one thread (history is not sent to the agent again)", async () => {
      const agent = agentFor(HttpAgent);
      const first = await say(agent, "chat hello");
      assert.deepEqual(first.types, [
        "RUN_STARTED",
        "STATE_SNAPSHOT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
      ]);
      assert.deepEqual(first.errors, []);
      const second = await say(agent, "stream please");
      assert.equal(second.types.filter((t) => t === "TEXT_MESSAGE_CONTENT").length, 4);
      assert.deepEqual(roles(agent), ["user", "assistant", "user", "assistant"]);
      assert.equal(agent.messages[1].content, "ok");
      assert.equal(agent.messages[3].content, "one two three four");
      const session = await (
        await fetch(`${BASE}/apps/scripted/users/js/sessions/${agent.threadId}`)
      ).json();
      const stored = session.events.filter((e) => e.author === "user");
      assert.deepEqual(
        stored.map((e) => e.content.parts[0].text),
        ["chat hello", "stream please"],
      );
    });

    test("tool call", async () => {
      const agent = agentFor(HttpAgent);
      const { types } = await say(agent, "tool weather");
      assert.deepEqual(types.slice(0, 6), [
        "RUN_STARTED",
        "STATE_SNAPSHOT",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
      ]);
      assert.deepEqual(roles(agent), ["user", "assistant", "tool", "assistant"]);
      const [call] = agent.messages[1].toolCalls;
      assert.equal(call.function.name, "get_weather");
      assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
      assert.equal(agent.messages[2].toolCallId, call.id);
      assert.deepEqual(JSON.parse(agent.messages[2].content), { city: "Paris", forecast: "sunny" });
      assert.equal(agent.messages[3].content, "It is sunny in Paris.");
    });

    test("state delta", async () => {
      const agent = agentFor(HttpAgent);
      const { types } = await say(agent, "state blue", { streaming: false });
      assert.ok(types.includes("STATE_DELTA"));
      assert.deepEqual(agent.state, { color: "blue" });
      await say(agent, "chat");
      assert.deepEqual(agent.state, { color: "blue" });
    });

    test("model error is a terminal RUN_ERROR; the thread goes on", async () => {
      const agent = agentFor(HttpAgent);
      const failed = await say(agent, "boom");
      assert.deepEqual(failed.types, ["RUN_STARTED", "STATE_SNAPSHOT", "RUN_ERROR"]);
      assert.equal(failed.errors.length, 1);
      assert.equal(failed.errors[0].code, "model_error");
      const next = await say(agent, "chat again");
      assert.equal(next.types.at(-1), "RUN_FINISHED");
      assert.equal(agent.messages.at(-1).content, "ok");
    });

    test("long-running tool answered by a tool message", async () => {
      const agent = agentFor(HttpAgent, "handoff");
      const asked = await say(agent, "Which city?");
      assert.equal(asked.types.at(-1), "RUN_FINISHED");
      assert.ok(!asked.types.includes("TOOL_CALL_RESULT"));
      const [call] = agent.messages.at(-1).toolCalls;
      agent.addMessage({ id: randomUUID(), role: "tool", toolCallId: call.id, content: "Lyon" });
      const answered = await agent.runAgent({ runId: randomUUID() });
      assert.equal(answered.newMessages.at(-1).content, "You said: Lyon");
    });

    test("abortRun stops the run on the server: no ghost reply next turn", async () => {
      const agent = agentFor(HttpAgent);
      const session = `${BASE}/apps/scripted/users/js/sessions/${agent.threadId}`;
      let calling;
      const called = new Promise((resolve) => {
        calling = resolve;
      });
      const slow = say(agent, "slow", {}, (event) => {
        if (event.type === "TOOL_CALL_END") calling();
      });
      await called;
      const { runs } = await (await fetch(`${session}/runs?status=running`)).json();
      agent.abortRun();
      await slow.catch(() => {}); // an aborted fetch: the client reports it its own way
      // Follow the run to its end (a notification, not a poll): it was cancelled.
      const followed = await (await fetch(`${session}/runs/${runs[0].invocationId}/events`)).text();
      assert.match(followed, /"reason":"cancelled"/);
      const next = await say(agent, "chat");
      assert.equal(next.types.at(-1), "RUN_FINISHED");
      const stored = await (await fetch(session)).json();
      const texts = stored.events.flatMap((e) => (e.content?.parts ?? []).map((p) => p.text));
      assert.ok(!texts.includes("finally"), JSON.stringify(texts)); // slow_tool's reply never came
    });

    test("a second run on a busy thread is refused (409); a cancel ends the first", async () => {
      const agent = agentFor(HttpAgent);
      const session = `${BASE}/apps/scripted/users/js/sessions/${agent.threadId}`;
      let calling;
      const called = new Promise((resolve) => {
        calling = resolve;
      });
      const slow = say(agent, "slow", {}, (event) => {
        if (event.type === "TOOL_CALL_END") calling();
      });
      await called; // slow_tool is running now
      const other = agentFor(HttpAgent, "scripted", agent.threadId);
      await assert.rejects(say(other, "chat"), (error) => error.status === 409);
      const { runs } = await (await fetch(`${session}/runs?status=running`)).json();
      assert.equal(runs.length, 1);
      const cancel = await fetch(`${session}/runs/${runs[0].invocationId}:cancel`, {
        method: "POST",
      });
      assert.equal(cancel.status, 200);
      const { types, errors } = await slow;
      assert.equal(types.at(-1), "RUN_ERROR");
      assert.equal(errors[0].code, "run_cancelled");
    });
  });
}
