// The SSE encoding of task events (router/event-stream.ts), over a fake client:
// each event with its id (the whole position) and kind, an id-only message when
// the position moves past filtered events, a reader that never reads dropped
// with an error event once SSE_BUFFER_BYTES_MAX is queued (memory stays bounded),
// and the subscription ended when the reader goes away.

import { expect, test } from "bun:test";
import { eventStream, filterFromQuery, SSE_BUFFER_BYTES_MAX } from "../../src/router/event-stream.ts";
import type { EventBatch, EventFilter, ShardPosition } from "../../src/protocol/events.ts";
import type { SchedulerClient } from "../../src/sdk/client.ts";
import type { SubscriptionHandlers } from "../../src/sdk/subscriptions.ts";

function fakeClient() {
  const state = { handlers: undefined as SubscriptionHandlers | undefined, after: undefined as ShardPosition[] | undefined, unsubscribed: 0 };
  const client = {
    subscribe(_filter: EventFilter, after: ShardPosition[] | undefined, handlers: SubscriptionHandlers) {
      state.handlers = handlers;
      state.after = after;
      return { requestId: 1, unsubscribe: () => state.unsubscribed++ };
    },
  };
  return { client: client as unknown as SchedulerClient, state };
}

const batch = (seq: number, events: number[]): EventBatch => ({
  requestId: 1, shard: 0, term: 9, seq,
  events: events.map((s) => ({ kind: "completed", shard: 0, term: 9, seq: s, at: 1, taskId: 100 + s, type: "noop", attempt: 1 })),
});

async function readText(response: Response, until: string): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes(until)) {
    const chunk = await reader.read();
    if (chunk.done) break;
    text += decoder.decode(chunk.value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

test("events carry their position as id; a position moved past filtered events is an id-only message", async () => {
  const { client, state } = fakeClient();
  const response = eventStream(client, {}, "0.9.1", (e) => e);
  expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
  expect(state.after).toEqual([{ shard: 0, term: 9, seq: 1 }]);
  state.handlers!.onBatch(batch(3, [2, 3]));
  state.handlers!.onBatch(batch(7, []));
  const text = await readText(response, "id: 0.9.7\n\n");
  expect(text).toStartWith("retry: 1000\n\n");
  expect(text).toContain(`id: 0.9.2\nevent: completed\ndata: {"kind":"completed","shard":0,"term":9,"seq":2,"at":1,"taskId":102,"type":"noop","attempt":1}\n\n`);
  expect(text).toContain("id: 0.9.3\nevent: completed\n");
  expect(text).toEndWith("id: 0.9.7\n\n");
});

test("a reader that never reads is dropped with an error event at the buffer bound, and its subscription ended", async () => {
  const { client, state } = fakeClient();
  const response = eventStream(client, {}, undefined, (e) => e);
  let seq = 0;
  const bytesPerBatch = 100 * 170; // about 170 bytes per event line
  for (let n = 0; n < (3 * SSE_BUFFER_BYTES_MAX) / bytesPerBatch && state.unsubscribed === 0; n++) {
    state.handlers!.onBatch(batch(seq + 100, Array.from({ length: 100 }, () => ++seq)));
  }
  expect(state.unsubscribed).toBe(1);
  const text = await new Response(response.body).text(); // the stream is closed: this ends
  expect(text).toEndWith(`event: error\ndata: {"code":"E_SLOW_READER","message":"the stream fell ${SSE_BUFFER_BYTES_MAX} bytes behind; reconnect with your last event id"}\n\n`);
  expect(text.length).toBeLessThan(SSE_BUFFER_BYTES_MAX + 64 * 1024);
});

test("a client that goes away ends the subscription", async () => {
  const { client, state } = fakeClient();
  const response = eventStream(client, {}, undefined, (e) => e);
  await response.body!.cancel();
  expect(state.unsubscribed).toBe(1);
});

test("a request whose client went away ends the subscription though nobody cancels the body, and onStop hears it once", () => {
  const { client, state } = fakeClient();
  const gone = new AbortController();
  let stops = 0;
  eventStream(client, {}, undefined, (e) => e, { signal: gone.signal, onStop: () => stops++ });
  expect(state.unsubscribed).toBe(0);
  gone.abort();
  gone.abort();
  expect(state.unsubscribed).toBe(1);
  expect(stops).toBe(1);
});

test("a request already gone when the stream starts subscribes and ends at once", () => {
  const { client, state } = fakeClient();
  const gone = new AbortController();
  gone.abort();
  let stops = 0;
  eventStream(client, {}, undefined, (e) => e, { signal: gone.signal, onStop: () => stops++ });
  expect(state.unsubscribed).toBe(1);
  expect(stops).toBe(1);
});

test("query filters: comma lists, task ids as numbers, unknown parameters refused", () => {
  expect(filterFromQuery(new URL("http://x/v1/events?kinds=completed,dead&types=a&tags=gpu,cpu&ids=1,22"))).toEqual({
    kinds: ["completed", "dead"], types: ["a"], tags: ["gpu", "cpu"], taskIds: [1, 22],
  });
  expect(() => filterFromQuery(new URL("http://x/v1/events?ids=1,x"))).toThrow("taskIds");
  expect(() => filterFromQuery(new URL("http://x/v1/events?kind=completed"))).toThrow("kind is not known");
});
