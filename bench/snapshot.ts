// What a snapshot of a big queue costs, step by step: the primary's export and
// encode (time its event loop would stand still if done in one go), the bytes,
// and the backup's decode and restore. Informs how to chunk and stream it.
//   bun bench/snapshot.ts [queued ...]        e.g. bun bench/snapshot.ts 100000 300000 1000000

import { encodeSnapshot } from "../src/coordinator/replication-codec.ts";
import { decodeSnapshotBody } from "../src/coordinator/replication-codec.ts";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../src/core/scheduler.ts";

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(100_000, 300_000, 1_000_000);
const PAYLOAD = new Uint8Array(64).fill(7);

function queued(n: number): Scheduler {
  const s = new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0, queueMax: n + 1 });
  for (let i = 0; i < n; i++) {
    const out = s.submit({ type: "mixed", payload: PAYLOAD, priority: i % 10, maxAttempts: 0, timeoutMs: 0, idempotencyKey: `12345-lq8x3k-${i}`, watcher: 0, watchRequestId: 0 }, 1_000_000);
    if (!out.ok) throw new Error(out.message);
  }
  s.takeReady();
  return s;
}

function timed<T>(f: () => T): [T, number] {
  const t = performance.now();
  const v = f();
  return [v, performance.now() - t];
}

console.log("queued,exportMs,encodeMs,snapshotMB,decodeMs,fromStateMs");
for (const n of sizes) {
  const s = queued(n);
  Bun.gc(true);
  const [state, exportMs] = timed(() => s.exportState());
  const [bytes, encodeMs] = timed(() => encodeSnapshot(state));
  const [decoded, decodeMs] = timed(() => decodeSnapshotBody(bytes));
  const [, fromStateMs] = timed(() => Scheduler.fromState({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0, queueMax: n + 1 }, decoded));
  console.log([n, exportMs, encodeMs, bytes.length / 1e6, decodeMs, fromStateMs].map((v) => Math.round(v * 10) / 10).join(","));
}
