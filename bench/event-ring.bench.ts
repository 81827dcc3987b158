// What recording task events costs a primary with nobody subscribed: one
// EventRing.record per finished task (stores into preallocated arrays), beside
// a submit, dispatch and result through the scheduler core for scale.
//   bun bench/event-ring.bench.ts

import { bench, group, run } from "mitata";
import { EventKind, EventRing } from "../src/core/event-ring.ts";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../src/core/scheduler.ts";
import { EVENT_RING_EVENTS } from "../src/coordinator/event-feed.ts";
import { EVENT_OUTPUT_BYTES_MAX } from "../src/protocol/events.ts";

const BATCH = 256;
const EMPTY = new Uint8Array(0);

const scheduler = new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0, retainedMax: 1000 });
scheduler.workerJoined(1, BATCH, [], 0);
let now = 0;
const ring = new EventRing(1, EVENT_RING_EVENTS, EVENT_OUTPUT_BYTES_MAX);

/** A batch of tasks through the core; with `record`, each ending also goes into the ring, as the coordinator does. */
function batch(record: boolean): number {
  now++;
  for (let i = 0; i < BATCH; i++) scheduler.submit({ type: "noop", payload: EMPTY, priority: 100, maxAttempts: 1, timeoutMs: 0, idempotencyKey: "", watcher: 0, watchRequestId: 0 }, now);
  scheduler.dispatch(now);
  const ready = scheduler.takeReady();
  for (const tasks of ready.assignments.values()) for (const t of tasks) scheduler.result(1, t.id, t.attempt, true, EMPTY, now);
  const ended = scheduler.takeReady();
  if (record) for (const t of ended.finished) ring.record(EventKind.COMPLETED, t, now, now);
  return ended.finished.length;
}

group(`${BATCH} tasks through the core`, () => {
  bench("without the event ring", () => batch(false));
  bench("with every ending recorded in the ring", () => batch(true));
});

await run();
