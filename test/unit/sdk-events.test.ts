// The SDK's event stream (sdk/events.ts) over a fake subscribe(): it resumes
// after the last event it handed out when a subscription ends, skips what it
// heard already, pauses a subscription an iterator cannot keep up with (at
// EVENTS_QUEUED_MAX) and resumes it from the last queued event, and fails
// (never throws) on a bad filter or id.

import { expect, test } from "bun:test";
import { EVENTS_QUEUED_MAX, TaskEvents, type Subscribe } from "../../src/sdk/events.ts";
import { SchedulerError } from "../../src/sdk/errors.ts";
import type { EventBatch, ShardPosition } from "../../src/protocol/events.ts";
import type { SubscriptionHandlers } from "../../src/sdk/subscriptions.ts";
import { waitFor } from "../e2e/harness.ts";

interface Opened {
  after: ShardPosition[] | undefined;
  handlers: SubscriptionHandlers;
  unsubscribed: boolean;
}

function fakeServer() {
  const opened: Opened[] = [];
  const subscribe: Subscribe = async (_filter, after, handlers) => {
    const o: Opened = { after, handlers, unsubscribed: false };
    opened.push(o);
    return { requestId: opened.length, unsubscribe: () => (o.unsubscribed = true) };
  };
  return { opened, subscribe };
}

const batch = (seqs: number[], position = seqs.at(-1) ?? 0, term = 5): EventBatch => ({
  requestId: 1, shard: 0, term, seq: position,
  events: seqs.map((seq) => ({ kind: "completed", shard: 0, term, seq, at: 1, taskId: 1000 + seq, type: "noop", attempt: 1 })),
});

test("a lost subscription is reopened after the last event handed out; events heard twice are skipped", async () => {
  const server = fakeServer();
  const stream = new TaskEvents(server.subscribe, { kinds: ["completed"] });
  const got: number[] = [];
  stream.on("completed", (e) => got.push(e.taskId));
  await waitFor("the subscription", () => server.opened[0]);
  expect(server.opened[0]!.after).toBeUndefined(); // from now
  server.opened[0]!.handlers.onBatch(batch([1, 2, 3]));
  expect(stream.lastEventId).toBe("0.5.3");
  server.opened[0]!.handlers.onEnd(new SchedulerError("E_UNAVAILABLE", "connection lost"));
  const second = await waitFor("the resubscription", () => server.opened[1]);
  expect(second.after).toEqual([{ shard: 0, term: 5, seq: 3 }]);
  second.handlers.onBatch(batch([3, 4])); // 3 again: an overlap
  expect(got).toEqual([1001, 1002, 1003, 1004]);
  stream.close();
});

test("an iterator that falls behind pauses the subscription at EVENTS_QUEUED_MAX and resumes it from the last queued event", async () => {
  const server = fakeServer();
  const stream = new TaskEvents(server.subscribe);
  const iterator = stream[Symbol.asyncIterator]();
  await waitFor("the subscription", () => server.opened[0]);
  const seqs = Array.from({ length: EVENTS_QUEUED_MAX + 100 }, (_, i) => i + 1);
  server.opened[0]!.handlers.onBatch(batch(seqs));
  expect(server.opened[0]!.unsubscribed).toBe(true); // paused at the bound
  expect(stream.lastEventId).toBe(`0.5.${EVENTS_QUEUED_MAX}`);
  for (let i = 1; i <= EVENTS_QUEUED_MAX / 2; i++) expect((await iterator.next()).value!.seq).toBe(i);
  const resumed = await waitFor("the resumed subscription", () => server.opened[1]);
  expect(resumed.after).toEqual([{ shard: 0, term: 5, seq: EVENTS_QUEUED_MAX }]);
  resumed.handlers.onBatch(batch([EVENTS_QUEUED_MAX + 1]));
  for (let i = EVENTS_QUEUED_MAX / 2 + 1; i <= EVENTS_QUEUED_MAX + 1; i++) expect((await iterator.next()).value!.seq).toBe(i);
  await iterator.return!();
  expect(resumed.unsubscribed).toBe(true);
});

test("a bad filter or id fails the stream: the iterator rejects and error listeners hear E_BAD_REQUEST", async () => {
  const server = fakeServer();
  const stream = new TaskEvents(server.subscribe, { after: "not-an-id" });
  const heard: string[] = [];
  stream.on("error", (e) => heard.push(e.code));
  const failure = await stream[Symbol.asyncIterator]().next().catch((e: SchedulerError) => e);
  expect((failure as SchedulerError).code).toBe("E_BAD_REQUEST");
  expect(heard).toEqual(["E_BAD_REQUEST"]);
  expect(server.opened).toHaveLength(0);
  expect(() => new TaskEvents(server.subscribe, { kinds: ["nope" as never] })).not.toThrow();
});
