// The write-ahead log: what was appended comes back; a torn tail (an append a
// crash interrupted) is cut off at the last whole record; any other damage, in
// the log or the snapshot, is refused with a StorageError that names the file
// and offset, and leaves the files as they were. Bit flips are tried at every
// bit of small logs and snapshots.

import { afterAll, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "../../src/cli/log.ts";
import { StorageError } from "../../src/coordinator/storage-error.ts";
import { crc32, WriteAheadLog, type Recovered } from "../../src/coordinator/wal.ts";
import { readSyncedMark, SYNCED_MARK_FILE } from "../../src/coordinator/wal-synced-mark.ts";
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler } from "../../src/core/scheduler.ts";
import { Prng } from "../../src/core/prng.ts";
import { concatBytes } from "../support/helpers.ts";

// tmpfs when there is one: thousands of small data dirs, and fsyncs that prove nothing here.
const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "wal-test-"));
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

/** A data dir holding `wal` (and `snapshot`), as a crash or a disk left it. */
function dirWith(wal: Uint8Array, snapshot?: Uint8Array): string {
  const d = freshDir();
  writeBatches(d, 0);
  writeFileSync(join(d, "wal.log"), wal);
  if (snapshot !== undefined) writeFileSync(join(d, "snapshot.bin"), snapshot);
  return d;
}

/** Recovers `dir`: the result, or the StorageError it was refused with (anything else is thrown). */
function recoverOrRefusal(dir: string): Recovered | StorageError {
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  try {
    return wal.recover();
  } catch (err) {
    if (err instanceof StorageError) return err;
    throw err;
  } finally {
    wal.close();
  }
}

/** Where each record of a whole log starts (format in src/coordinator/wal-records.ts). */
function recordStarts(log: Uint8Array): number[] {
  const starts: number[] = [];
  for (let at = 0; at < log.length; at += 8 + new DataView(log.buffer, log.byteOffset).getUint32(at, true)) starts.push(at);
  return starts;
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

test("a log cut at any byte (a torn last append) recovers exactly the whole records before the cut, and is truncated there", () => {
  const dir = freshDir();
  writeBatches(dir, 4);
  const full = readFileSync(join(dir, "wal.log"));
  const recordBytes = full.length / 4;
  for (let cut = 0; cut < full.length; cut++) {
    const d = dirWith(full.subarray(0, cut));
    const r = recoverOrRefusal(d);
    if (r instanceof StorageError) throw new Error(`cut=${cut}: refused: ${r.message}`);
    const whole = Math.floor(cut / recordBytes);
    expect(r.batches).toHaveLength(whole);
    expect(r.index).toBe(whole * 2);
    expect(r.tornTail?.offset).toBe(cut % recordBytes === 0 ? undefined : whole * recordBytes);
    expect(readFileSync(join(d, "wal.log")).length).toBe(whole * recordBytes);
  }
});

/** Whether `damaged` differs from `whole` in the first record's length field so that the record claims to fit in `damaged`. */
function lengthNowFits(damaged: Uint8Array, at: number, flipped: number): boolean {
  if (flipped - at >= 4 || damaged.length - at < 4) return false;
  return at + 8 + new DataView(damaged.buffer, damaged.byteOffset).getUint32(at, true) <= damaged.length;
}

test("a flipped bit in any whole record, with or without a torn append after it, is refused naming that record; nothing is cut", () => {
  const dir = freshDir();
  writeBatches(dir, 5);
  const five = new Uint8Array(readFileSync(join(dir, "wal.log")));
  const starts = recordStarts(five);
  const logs = [five.subarray(0, starts[4]!), five.subarray(0, starts[4]! + 13)]; // four whole records; and a torn fifth after them
  let cases = 0;
  for (const log of logs) {
    for (let at = 0; at < starts[4]!; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = log.slice();
        damaged[at]! ^= 1 << bit;
        const d = dirWith(damaged);
        const r = recoverOrRefusal(d);
        const where = `log of ${log.length} bytes, bit ${bit} of byte ${at}`;
        if (!(r instanceof StorageError)) throw new Error(`${where}: recovered ${r.batches.length} batches instead of refusing`);
        expect({ where, file: r.file, offset: r.offset }).toEqual({ where, file: join(d, "wal.log"), offset: starts.findLast((s) => s <= at)! });
        expect(r.message).toContain("--recover-from-peer");
        expect(new Uint8Array(readFileSync(join(d, "wal.log")))).toEqual(damaged);
        cases++;
      }
    }
  }
  expect(cases).toBe(2 * 8 * starts[4]!);
});

test("a flipped bit in the torn tail of an interrupted append is repaired like the tear itself, unless it makes the record's length fit in the file", () => {
  const dir = freshDir();
  writeBatches(dir, 5);
  const five = new Uint8Array(readFileSync(join(dir, "wal.log")));
  const last = recordStarts(five)[4]!;
  let repaired = 0;
  for (let cut = last + 1; cut < five.length; cut++) {
    for (let at = last; at < cut; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = five.slice(0, cut);
        damaged[at]! ^= 1 << bit;
        const r = recoverOrRefusal(dirWith(damaged));
        const where = `cut=${cut}, bit ${bit} of byte ${at}`;
        if (lengthNowFits(damaged, last, at)) {
          // Its length now says the whole record is on disk: a complete record failing its checksum, which is refused.
          expect({ where, refused: r instanceof StorageError && r.offset === last }).toEqual({ where, refused: true });
          continue;
        }
        if (r instanceof StorageError) throw new Error(`${where}: refused: ${r.message}`);
        expect({ where, batches: r.batches.length, torn: r.tornTail?.offset }).toEqual({ where, batches: 4, torn: last });
        repaired++;
      }
    }
  }
  expect(repaired).toBeGreaterThan(0);
});

test("an append whose size reached the disk but not its data (zeros to the end) is a torn tail; zeros inside the log are not", () => {
  const dir = freshDir();
  writeBatches(dir, 3);
  const log = new Uint8Array(readFileSync(join(dir, "wal.log")));
  const r = recoverOrRefusal(dirWith(concatBytes([log, new Uint8Array(4096)])));
  expect(r instanceof StorageError ? r.message : { batches: r.batches.length, torn: r.tornTail?.offset }).toEqual({ batches: 3, torn: log.length });
  const zeroed = log.slice();
  const second = recordStarts(log)[1]!;
  zeroed.fill(0, second, second + 8);
  const refused = recoverOrRefusal(dirWith(zeroed));
  expect(refused instanceof StorageError && refused.offset).toBe(second);
});

test("a length damaged mid-log together with its record's body is refused: a whole record follows it", () => {
  const dir = freshDir();
  writeBatches(dir, 4);
  const log = new Uint8Array(readFileSync(join(dir, "wal.log")));
  const second = recordStarts(log)[1]!;
  const damaged = log.slice();
  damaged[second + 3] = 0x40; // the length now runs far past the end of the file
  damaged[second + 20]! ^= 0xff; // and the record's own count no longer ends where its checksum matches
  const r = recoverOrRefusal(dirWith(damaged));
  expect(r instanceof StorageError ? { offset: r.offset, problem: r.problem } : r).toEqual({ offset: second, problem: expect.stringContaining(`a whole record starts at offset ${recordStarts(log)[2]}`) });
});

test("random files: recovered or refused with a StorageError, never another error", () => {
  const prng = new Prng(7);
  for (let trial = 0; trial < 100; trial++) {
    const d = dirWith(new Uint8Array(prng.int(300)).map(() => prng.int(256)), new Uint8Array(prng.int(300)).map(() => prng.int(256)));
    recoverOrRefusal(d);
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
});

test("a flipped bit anywhere in the snapshot, or a byte more or less, is refused naming snapshot.bin; the log is left as it was", () => {
  const dir = freshDir();
  const s = new Scheduler({ ...DEFAULT_SCHEDULER_OPTIONS, shard: 0 });
  s.submit({ type: "noop", payload: new Uint8Array([1, 2, 3]), priority: 5, maxAttempts: 0, timeoutMs: 0, idempotencyKey: "k", watcher: 0, watchRequestId: 0 }, 10);
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  wal.recover();
  wal.snapshot(3, 2, s.exportState());
  wal.append(3, 3, 2, entries(2, 1));
  wal.close();
  const snapshot = new Uint8Array(readFileSync(join(dir, "snapshot.bin")));
  const log = new Uint8Array(readFileSync(join(dir, "wal.log")));
  const damagedCopies: Uint8Array[] = [snapshot.subarray(0, snapshot.length - 1), concatBytes([snapshot, new Uint8Array([0])])];
  for (let at = 0; at < snapshot.length; at++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = snapshot.slice();
      damaged[at]! ^= 1 << bit;
      damagedCopies.push(damaged);
    }
  }
  for (const [i, damaged] of damagedCopies.entries()) {
    const d = dirWith(log, damaged);
    const r = recoverOrRefusal(d);
    expect({ i, file: r instanceof StorageError ? r.file : `recovered ${r.index}` }).toEqual({ i, file: join(d, "snapshot.bin") });
    expect(new Uint8Array(readFileSync(join(d, "wal.log")))).toEqual(log);
  }
});

test("a log that does not follow its snapshot is refused: a gap, a missing snapshot, a record out of place", () => {
  const dir = freshDir();
  writeBatches(dir, 4); // epoch 1: indexes 1-2, 3-4, 5-6, 7-8
  const log = new Uint8Array(readFileSync(join(dir, "wal.log")));
  const starts = recordStarts(log);
  const gap = concatBytes([log.subarray(0, starts[1]), log.subarray(starts[2]!)]);
  const missingSnapshot = log.subarray(starts[2]!);
  const swapped = concatBytes([log.subarray(0, starts[1]), log.subarray(starts[2]!, starts[3]), log.subarray(starts[1]!, starts[2]), log.subarray(starts[3]!)]);
  for (const [what, damaged, offset] of [["gap", gap, starts[1]!], ["no snapshot", missingSnapshot, 0], ["swapped", swapped, starts[1]!]] as const) {
    const r = recoverOrRefusal(dirWith(damaged));
    expect({ what, offset: r instanceof StorageError ? r.offset : `recovered ${r.index}` }).toEqual({ what, offset });
    if (r instanceof StorageError) expect(r.problem).toMatch(/does not follow/);
  }
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

  // Nothing of a newer epoch is ever appended after such records (the log is emptied first): that is damage.
  const newerDir = freshDir();
  const newer = new WriteAheadLog(newerDir, 1 << 30, quiet);
  newer.recover();
  newer.append(2, 9, 2, entries(2, 9));
  newer.close();
  writeFileSync(join(dir, "wal.log"), concatBytes([logged, readFileSync(join(newerDir, "wal.log"))]));
  const r2 = recoverOrRefusal(dir);
  expect(r2 instanceof StorageError ? r2.problem : r2).toMatch(/comes after records the snapshot replaced/);
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

test("with a sync interval an append is written, not synced; syncIfDirty() syncs once, and recovery reads what was only written", () => {
  const dir = freshDir();
  const wal = new WriteAheadLog(dir, 1 << 30, quiet, 50);
  wal.recover();
  wal.append(1, 1, 2, entries(2, 0));
  wal.append(1, 3, 3, entries(3, 1));
  expect({ commits: wal.stats().commits, syncs: wal.stats().syncs }).toEqual({ commits: 2, syncs: 0 });
  wal.syncIfDirty();
  wal.syncIfDirty(); // nothing new: no second fdatasync
  expect(wal.stats().syncs).toBe(1);
  expect(wal.stats().fsyncHistogram.count).toBe(1);
  wal.append(1, 6, 1, entries(1, 2));
  wal.close(); // unsynced, as a kill -9 would leave it: the page cache still holds it
  const r = new WriteAheadLog(dir, 1 << 30, quiet).recover();
  expect({ index: r.index, batches: r.batches.map((b) => b.firstIndex) }).toEqual({ index: 6, batches: [1, 3, 6] });
});

test("a background sync counts when it is done; one still running when the log closes is moot, not a failure", async () => {
  const wal = new WriteAheadLog(freshDir(), 1 << 30, quiet, 50);
  wal.recover();
  const failures: Error[] = [];
  wal.append(1, 1, 2, entries(2, 0));
  wal.syncInBackground((err) => void failures.push(err));
  wal.syncInBackground((err) => void failures.push(err)); // one at a time: nothing new to sync
  for (let i = 0; i < 200 && wal.stats().syncs === 0; i++) await Bun.sleep(5);
  expect(wal.stats().syncs).toBe(1);
  wal.append(1, 3, 1, entries(1, 1));
  wal.syncInBackground((err) => void failures.push(err));
  wal.close(); // before that sync's answer: its fd is gone, which is not a disk failure
  await Bun.sleep(50);
  expect(failures).toEqual([]);
});

test("without a sync interval every append is synced before it returns", () => {
  const wal = new WriteAheadLog(freshDir(), 1 << 30, quiet);
  wal.recover();
  for (let i = 0; i < 3; i++) wal.append(1, 1 + i, 1, entries(1, i));
  expect({ commits: wal.stats().commits, syncs: wal.stats().syncs }).toEqual({ commits: 3, syncs: 3 });
  wal.close();
});

/**
 * --fsync-interval-ms and a power loss: five one-entry records, the first three synced (the
 * mark says so), the last two only written; then record `hole` (1-based) is zeroed, as when
 * the kernel wrote a later page back but not that one.
 */
function powerLossWithHole(hole: number): { dir: string; recordBytes: number; syncedAt: number } {
  const dir = freshDir();
  const wal = new WriteAheadLog(dir, 1 << 30, quiet, 50);
  wal.recover();
  for (let i = 0; i < 3; i++) wal.append(1, 1 + i, 1, entries(1, i));
  wal.syncIfDirty();
  const syncedAt = wal.logBytes;
  for (let i = 3; i < 5; i++) wal.append(1, 1 + i, 1, entries(1, i));
  wal.close();
  const recordBytes = syncedAt / 3;
  const log = new Uint8Array(readFileSync(join(dir, "wal.log")));
  log.fill(0, (hole - 1) * recordBytes, hole * recordBytes);
  writeFileSync(join(dir, "wal.log"), log); // the same file (inode): the mark still applies
  return { dir, recordBytes, syncedAt };
}

test("with a sync interval, a hole past the last sync is cut like a torn tail, the whole record after it too", () => {
  const { dir, syncedAt } = powerLossWithHole(4);
  const r = new WriteAheadLog(dir, 1 << 30, quiet, 50).recover();
  expect(r.index).toBe(3);
  expect(r.tornTail?.offset).toBe(syncedAt);
  expect(r.tornTail?.problem).toContain(`past the last sync (byte ${syncedAt})`);
  expect(readFileSync(join(dir, "wal.log")).length).toBe(syncedAt);
});

test("with a sync interval, damage before the last sync is still refused: those records were on disk", () => {
  const { dir, recordBytes } = powerLossWithHole(2);
  const r = recoverOrRefusal(dir);
  expect(r instanceof StorageError ? r.offset : r).toBe(recordBytes);
});

test("a run without a sync interval uses the mark an interval run left for its log, then removes it", () => {
  const { dir } = powerLossWithHole(4);
  expect(new WriteAheadLog(dir, 1 << 30, quiet).recover().index).toBe(3);
  expect(existsSync(join(dir, SYNCED_MARK_FILE))).toBe(false);
});

test("a mark made for another log file (before the log's cut replaced it) does not apply", () => {
  const { dir } = powerLossWithHole(4);
  const copy = join(dir, "wal.log.copy");
  writeFileSync(copy, readFileSync(join(dir, "wal.log")));
  renameSync(copy, join(dir, "wal.log")); // a new inode, as the cut makes
  expect(recoverOrRefusal(dir)).toBeInstanceOf(StorageError);
});

test("a background sync marks how far the log is on disk once it is", async () => {
  const dir = freshDir();
  const wal = new WriteAheadLog(dir, 1 << 30, quiet, 50);
  wal.recover();
  wal.append(1, 1, 2, entries(2, 0));
  wal.syncInBackground((err) => {
    throw err;
  });
  for (let i = 0; i < 200 && wal.stats().syncs === 0; i++) await Bun.sleep(5);
  const fd = openSync(join(dir, "wal.log"), "r");
  expect(readSyncedMark(dir, fd)).toBe(wal.logBytes);
  closeSync(fd);
  wal.close();
});
