// Scheduler core microbenchmark: the cost per task of submit, dispatch and
// result, in batches as the coordinator shell drives it.
//   bun bench/scheduler.bench.ts

import { bench, group, run } from "mitata";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../src/core/scheduler.ts";

const BATCH = 256;
const EMPTY = new Uint8Array(0);
const scheduler = new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0, retainedMax: 10_000 });
scheduler.workerJoined(1, BATCH, [], 0);
let now = 0;

group(`${BATCH} tasks through the core`, () => {
  bench("submit x256, dispatch, result x256", () => {
    now++;
    for (let i = 0; i < BATCH; i++) {
      scheduler.submit({ type: "noop", payload: EMPTY, priority: 100, maxAttempts: 0, timeoutMs: 0, idempotencyKey: "", watcher: 7, watchRequestId: i }, now);
    }
    scheduler.dispatch(now);
    const leased = scheduler.takeReady().assignments.get(1) ?? [];
    for (const t of leased) scheduler.result(1, t.id, t.attempt, true, EMPTY, now);
    return scheduler.takeReady().finished.length;
  });
});
await run();
