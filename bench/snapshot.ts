// What a snapshot of a big queue costs, step by step: the primary's export and
// encode (time its event loop would stand still if done in one go), the bytes,
// and the backup's decode and restore. Informs how to chunk and stream it.
//   bun bench/snapshot.ts [queued ...]        e.g. bun bench/snapshot.ts 100000 300000 1000000

import { decodeSnapshotBody, encodeSnapshot, encodeSnapshotPart, readSnapshotPart, writeSnapshotPart } from "../src/coordinator/replication-codec.ts";
import { SNAPSHOT_PART_LIMITS } from "../src/coordinator/snapshot-stream.ts";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../src/core/scheduler.ts";
import { SnapshotAssembly } from "../src/core/snapshot-parts.ts";
import { FrameWriter, forEachMessage, Reader } from "../src/protocol/codec.ts";

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

/** The streamed form: every part encoded (primary), then read and restored (backup); what one part took (p50, p99, slowest). */
function parts(s: Scheduler): { encodeMs: number; partMsP50: number; partMsP99: number; maxPartMs: number; mb: number; restoreMs: number; count: number } {
  const frames: Uint8Array[] = [];
  const cutter = s.startExport(SNAPSHOT_PART_LIMITS);
  const partMs: number[] = [];
  const t0 = performance.now();
  for (let p = cutter.next(), seq = 0; p !== undefined; p = cutter.next(), seq++) {
    const t = performance.now();
    const w = new FrameWriter(1 << 20);
    writeSnapshotPart(w, 1, 1, seq, false, encodeSnapshotPart(p));
    frames.push(w.finish().slice(4));
    partMs.push(performance.now() - t);
  }
  partMs.sort((a, b) => a - b);
  const at = (q: number) => partMs[Math.min(partMs.length - 1, Math.floor(q * partMs.length))]!;
  const encodeMs = performance.now() - t0;
  const t1 = performance.now();
  const assembly = new SnapshotAssembly(DEFAULT_SCHEDULER_OPTIONS.agingMs);
  const reader = new Reader();
  for (const f of frames) forEachMessage(f, reader, (_k, r) => assembly.add(readSnapshotPart(r).part));
  assembly.finish();
  return { encodeMs, partMsP50: at(0.5), partMsP99: at(0.99), maxPartMs: at(1), mb: frames.reduce((n, f) => n + f.length, 0) / 1e6, restoreMs: performance.now() - t1, count: frames.length };
}

console.log("queued,exportMs,encodeMs,snapshotMB,decodeMs,fromStateMs,parts,partsEncodeMs,partMsP50,partMsP99,slowestPartMs,partsMB,partsRestoreMs");
for (const n of sizes) {
  const s = queued(n);
  Bun.gc(true);
  const [state, exportMs] = timed(() => s.exportState());
  const [bytes, encodeMs] = timed(() => encodeSnapshot(state));
  const [decoded, decodeMs] = timed(() => decodeSnapshotBody(bytes));
  const [, fromStateMs] = timed(() => Scheduler.fromState({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0, queueMax: n + 1 }, decoded));
  const p = parts(s);
  console.log([n, exportMs, encodeMs, bytes.length / 1e6, decodeMs, fromStateMs, p.count, p.encodeMs, p.partMsP50, p.partMsP99, p.maxPartMs, p.mb, p.restoreMs].map((v) => Math.round(v * 10) / 10).join(","));
}
