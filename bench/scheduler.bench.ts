// Scheduler core microbenchmark: the cost per task of submit, dispatch and
// result, in batches as the coordinator shell drives it; once with few tasks
// retained and no keys, once as a coordinator runs by default (every task with
// an idempotency key, 200,000 finished tasks retained).
//   bun bench/scheduler.bench.ts

import { bench, group, run } from "mitata";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../src/core/scheduler.ts";

const BATCH = 256;
const EMPTY = new Uint8Array(0);

/** What a worker binary announces: the built-ins and a few handlers. */
const WORKER_TYPES = ["noop", "sleep", "cpu", "wordcount", "resize", "flaky", "slow-job", "always-fails"];

function throughTheCore(retainedMax: number, keyed: boolean, types?: string[]): () => number {
  const scheduler = new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0, retainedMax });
  scheduler.workerJoined(1, BATCH, [], 0, types);
  let now = 0;
  let seq = 0;
  return () => {
    now++;
    for (let i = 0; i < BATCH; i++) {
      const idempotencyKey = keyed ? `12345-lq8x3k-${seq++}` : "";
      scheduler.submit({ type: "noop", payload: EMPTY, priority: 100, maxAttempts: 0, timeoutMs: 0, idempotencyKey, watcher: 7, watchRequestId: i }, now);
    }
    scheduler.dispatch(now);
    const leased = scheduler.takeReady().assignments.get(1) ?? [];
    for (const t of leased) scheduler.result(1, t.id, t.attempt, true, EMPTY, now);
    return scheduler.takeReady().finished.length;
  };
}

group(`${BATCH} tasks through the core`, () => {
  bench("submit x256, dispatch, result x256 (10,000 retained, no keys)", throughTheCore(10_000, false));
  bench("the same with keys, 200,000 retained", throughTheCore(200_000, true));
  bench("no keys, a worker announcing its task types (matched by type)", throughTheCore(10_000, false, WORKER_TYPES));
});
await run();
