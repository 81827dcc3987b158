// The gRPC Events call's life (router/grpc/event-call.ts), over a fake call and
// client: a caller already gone when the loopback client is ready never gets a
// subscription; one that cancels later has it ended; either way onStop once.

import { EventEmitter } from "node:events";
import { expect, test } from "bun:test";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { streamEvents } from "../../src/router/grpc/event-call.ts";
import type { SchedulerClient } from "../../src/sdk/client.ts";

function fakes(cancelled: boolean) {
  const state = { subscribed: 0, unsubscribed: 0, stops: 0, written: [] as unknown[] };
  const call = Object.assign(new EventEmitter(), { cancelled, writableLength: 0, write: (m: unknown) => state.written.push(m) });
  const client = {
    subscribe() {
      state.subscribed++;
      return { requestId: 1, unsubscribe: () => state.unsubscribed++ };
    },
  };
  const start = () => streamEvents(call as unknown as ServerWritableStream<Record<string, unknown>, unknown>, client as unknown as SchedulerClient, {}, undefined, () => state.stops++);
  return { call, state, start };
}

test("a caller gone before the stream starts gets no subscription", () => {
  const { state, start } = fakes(true);
  start();
  expect(state.subscribed).toBe(0);
  expect(state.stops).toBe(1);
});

test("a caller that cancels ends its subscription, once", () => {
  const { call, state, start } = fakes(false);
  start();
  expect(state.subscribed).toBe(1);
  call.emit("cancelled");
  call.emit("cancelled");
  expect(state.unsubscribed).toBe(1);
  expect(state.stops).toBe(1);
});
