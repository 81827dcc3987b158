// How long one event-loop turn of the primary's snapshot work takes, in one process:
// a streamed snapshot's part (cut copy-on-write, encoded, written into a frame) and a
// step of the log's own compaction (--data-dir: a part into the snapshot file, then the
// id lists a slice at a time, the install, the log cut), each turn after setImmediate as
// the coordinator runs them. These bound how long a client waits behind them.
//   bun bench/snapshot-steps.ts [queued ...]      e.g. bun bench/snapshot-steps.ts 300000 1000000
// One CSV line per size and kind: turns, p50/p99/max of a turn, and the whole.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "../src/cli/log.ts";
import { encodeSnapshotPart, writeSnapshotPart } from "../src/coordinator/replication-codec.ts";
import { SNAPSHOT_PART_LIMITS } from "../src/coordinator/snapshot-stream.ts";
import { WalCompaction } from "../src/coordinator/wal-compaction.ts";
import { WriteAheadLog } from "../src/coordinator/wal.ts";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../src/core/scheduler.ts";
import { FrameWriter } from "../src/protocol/codec.ts";

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(300_000, 1_000_000);
const PAYLOAD = new Uint8Array(32).fill(7);

function queued(n: number): Scheduler {
  const s = new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0, queueMax: n + 1 });
  for (let i = 0; i < n; i++) {
    const out = s.submit({ type: "noop", payload: PAYLOAD, priority: 0, maxAttempts: 0, timeoutMs: 0, idempotencyKey: `small-${i}`, watcher: 0, watchRequestId: 0 }, 1_000_000);
    if (!out.ok) throw new Error(out.message);
  }
  s.takeReady();
  return s;
}

/** Runs `turn` once per event-loop turn until it says it is done; what each turn took. */
async function turns(turn: () => boolean): Promise<number[]> {
  const ms: number[] = [];
  await new Promise<void>((done) => {
    const next = () => {
      const t = performance.now();
      const finished = turn();
      ms.push(performance.now() - t);
      if (finished) done();
      else setImmediate(next);
    };
    setImmediate(next);
  });
  return ms;
}

function row(n: number, kind: string, ms: number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
  return [n, kind, ms.length, at(0.5), at(0.99), at(1), Math.round(ms.reduce((a, b) => a + b, 0))].join(",");
}

const dir = mkdtempSync(join(tmpdir(), "snapshot-steps-"));
console.log("queued,kind,turns,turnMsP50,turnMsP99,turnMsMax,totalMs");
try {
  for (const n of sizes) {
    const s = queued(n);
    Bun.gc(true);
    const cutter = s.startExport(SNAPSHOT_PART_LIMITS);
    const w = new FrameWriter(1 << 20, 1 << 30);
    let seq = 0;
    console.log(row(n, "stream part", await turns(() => {
      const part = cutter.next();
      writeSnapshotPart(w, 1, 1, seq++, part === undefined, encodeSnapshotPart(part ?? { k: "dlq", ids: [] }));
      w.finish();
      return part === undefined;
    })));
    const wal = new WriteAheadLog(join(dir, String(n)), 1 << 30, new Logger("bench", "error"));
    wal.append(1, 1, 1, new Uint8Array(16));
    // Twice: the second replaces the first snapshot (and frees it) as a running coordinator's do.
    for (const kind of ["compaction step", "compaction step, replacing"]) {
      const compaction = new WalCompaction(wal, 1, 1, s);
      console.log(row(n, kind, await turns(() => (compaction.step(), compaction.done))));
    }
    wal.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
