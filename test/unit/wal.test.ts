// The write-ahead log: what was appended comes back; a torn or corrupt tail is
// cut off at the last whole record; damaged files never crash recovery.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "../../src/cli/log.ts";
import { crc32, WriteAheadLog } from "../../src/coordinator/wal.ts";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../../src/core/scheduler.ts";
import { Prng } from "../../src/core/prng.ts";

const root = mkdtempSync(join(tmpdir(), "wal-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = new Logger("test", "error");
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

/** A batch of `count` fake entries (`u32 length | bytes`), recognisable by `seed`. */
function entries(count: number, seed: number): Uint8Array {
  const parts: number[] = [];
  for (let i = 0; i < count; i++) {
    const body = [seed & 0xff, i & 0xff, (seed + i) & 0xff];
    parts.push(body.length, 0, 0, 0, ...body);
  }
  return new Uint8Array(parts);
}

function writeBatches(dir: string, n: number): void {
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  wal.recover();
  for (let b = 0; b < n; b++) wal.append(1, b * 2 + 1, 2, entries(2, b));
  wal.close();
}

test("crc32 matches the standard check value", () => {
  expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
});

test("appended batches come back in order, and the index follows them", () => {
  const dir = freshDir();
  writeBatches(dir, 5);
  const r = new WriteAheadLog(dir, 1 << 30, quiet).recover();
  expect(r.index).toBe(10);
  expect(r.epoch).toBe(1);
  expect(r.batches.map((b) => b.firstIndex)).toEqual([1, 3, 5, 7, 9]);
  expect([...r.batches[2]!.entries]).toEqual([...entries(2, 2)]);
});

test("a log cut at any byte recovers exactly the whole records before the cut, and is truncated there", () => {
  const dir = freshDir();
  writeBatches(dir, 4);
  const full = readFileSync(join(dir, "wal.log"));
  const recordBytes = full.length / 4;
  for (let cut = 0; cut < full.length; cut++) {
    const d = freshDir();
    writeBatches(d, 0);
    writeFileSync(join(d, "wal.log"), full.subarray(0, cut));
    const wal = new WriteAheadLog(d, 1 << 30, quiet);
    const r = wal.recover();
    const whole = Math.floor(cut / recordBytes);
    expect(r.batches).toHaveLength(whole);
    expect(r.index).toBe(whole * 2);
    wal.close();
    expect(readFileSync(join(d, "wal.log")).length).toBe(whole * recordBytes);
  }
});

test("a flipped bit stops recovery at the damaged record; random garbage never throws", () => {
  const dir = freshDir();
  writeBatches(dir, 4);
  const full = new Uint8Array(readFileSync(join(dir, "wal.log")));
  const recordBytes = full.length / 4;
  const prng = new Prng(7);
  for (let trial = 0; trial < 200; trial++) {
    const damaged = full.slice();
    const at = prng.int(damaged.length);
    damaged[at]! ^= 1 << prng.int(8);
    const d = freshDir();
    writeBatches(d, 0);
    writeFileSync(join(d, "wal.log"), damaged);
    const r = new WriteAheadLog(d, 1 << 30, quiet).recover();
    const intact = Math.floor(at / recordBytes);
    // Records before the damaged one survive; the damaged one and what follows do not
    // (a flip in a length field can only make the record look torn or mismatched).
    expect(r.batches.length).toBe(intact);
  }
  for (let trial = 0; trial < 100; trial++) {
    const d = freshDir();
    writeBatches(d, 0);
    writeFileSync(join(d, "wal.log"), new Uint8Array(prng.int(300)).map(() => prng.int(256)));
    writeFileSync(join(d, "snapshot.bin"), new Uint8Array(prng.int(300)).map(() => prng.int(256)));
    expect(() => new WriteAheadLog(d, 1 << 30, quiet).recover()).not.toThrow();
  }
});

test("a snapshot replaces the log; recovery is the snapshot plus what was appended after it", () => {
  const dir = freshDir();
  const s = new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0 });
  s.submit({ type: "noop", payload: new Uint8Array([1, 2, 3]), priority: 5, maxAttempts: 0, timeoutMs: 0, idempotencyKey: "k", watcher: 0, watchRequestId: 0 }, 10);
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  wal.recover();
  wal.append(3, 1, 2, entries(2, 0));
  wal.snapshot(3, 2, s.exportState());
  expect(readFileSync(join(dir, "wal.log")).length).toBe(0);
  wal.append(3, 3, 2, entries(2, 1));
  wal.close();
  const r = new WriteAheadLog(dir, 1 << 30, quiet).recover();
  expect(r.epoch).toBe(3);
  expect(r.index).toBe(4);
  expect(r.state?.tasks).toHaveLength(1);
  expect([...(r.state!.tasks[0]!.payload as Uint8Array)]).toEqual([1, 2, 3]);
  expect(r.batches.map((b) => b.firstIndex)).toEqual([3]);
  // A damaged snapshot is reported and skipped, never fatal.
  const snap = new Uint8Array(readFileSync(join(dir, "snapshot.bin")));
  snap[snap.length - 1]! ^= 0xff;
  writeFileSync(join(dir, "snapshot.bin"), snap);
  expect(new WriteAheadLog(dir, 1 << 30, quiet).recover().state).toBeUndefined();
});

test("the log asks for a snapshot once it passes its size limit", () => {
  const wal = new WriteAheadLog(freshDir(), 200, quiet);
  wal.recover();
  expect(wal.wantsSnapshot).toBe(false);
  for (let i = 0; i < 10; i++) wal.append(1, i * 2 + 1, 2, entries(2, i));
  expect(wal.wantsSnapshot).toBe(true);
  wal.close();
});

test("a new primary's snapshot wins over older-epoch records still in the log (crash before the log was emptied)", () => {
  const dir = freshDir();
  writeBatches(dir, 4); // epoch 1: indexes 1-2, 3-4, 5-6, 7-8
  const logged = readFileSync(join(dir, "wal.log"));
  const recordBytes = logged.length / 4;
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  wal.recover();
  // A resync: the new primary (epoch 2) shares indexes 1-4 with us; our 5-8 were never acknowledged.
  wal.snapshot(2, 4, new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0 }).exportState());
  wal.close();
  writeFileSync(join(dir, "wal.log"), logged); // the crash: snapshot renamed, log not yet emptied
  const r = new WriteAheadLog(dir, 1 << 30, quiet).recover();
  expect({ index: r.index, epoch: r.epoch, batches: r.batches.length }).toEqual({ index: 4, epoch: 2, batches: 0 });
  expect(readFileSync(join(dir, "wal.log")).length).toBe(2 * recordBytes); // cut at the first stale record
});

test("the log counts its commits, the entries they carried, and the time fsync took", () => {
  const dir = freshDir();
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  wal.recover();
  wal.append(1, 1, 2, entries(2, 0));
  wal.append(1, 3, 3, entries(3, 1));
  const s = wal.stats();
  wal.close();
  expect({ commits: s.commits, entries: s.entries, bytes: s.bytes, snapshots: s.snapshots }).toEqual({ commits: 2, entries: 5, bytes: readFileSync(join(dir, "wal.log")).length, snapshots: 0 });
  expect(s.fsyncHistogram.count).toBe(2);
  expect(s.fsyncHistogram.counts.at(-1)!).toBeLessThanOrEqual(2);
  expect(s.fsyncHistogram.sumMs).toBeGreaterThanOrEqual(s.fsyncMsMax);
});
