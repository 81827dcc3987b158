// The log's own snapshot written in parts (src/coordinator/wal-compaction.ts): while
// the scheduler changes and records are appended between parts, a copy of the data
// directory taken at any step (a crash there) recovers to every record appended so
// far, from the old snapshot or the new one; the new one holds the state as it was
// when the compaction began, and the log keeps only the records after it.
//
// A crash image here is the files as they are between two steps. What a crash can
// drop (unsynced bytes) is modelled by test/sim/wal-crash-sim.test.ts; every file
// this code renames into place was synced first, so it is whole or absent.

import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "../../src/cli/log.ts";
import { WalCompaction } from "../../src/coordinator/wal-compaction.ts";
import { COMPACTION_TEMP_FILE, SNAPSHOT_FILE, SNAPSHOT_MAGIC, WAL_FILE, WAL_TEMP_FILE, WriteAheadLog } from "../../src/coordinator/wal.ts";
import { Prng } from "../../src/core/prng.ts";
import type { SchedulerState } from "../../src/core/scheduler-state.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { FAIL, makeScheduler, OK, submitOk, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "wal-compaction-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = new Logger("test", "error");
let dirs = 0;
const newDir = () => join(root, `d${dirs++}`);

const OPTIONS = { ...TEST_OPTIONS, queueMax: 10_000, retainedMax: 10_000, dlqMax: 10_000 };
/** Small parts, so the 300 tasks take dozens of steps. */
const LIMITS = { bytesMax: 2_000, idsMax: 7 };
const STEPS_MAX = 10_000;
const FILES = [WAL_FILE, SNAPSHOT_FILE, COMPACTION_TEMP_FILE, WAL_TEMP_FILE] as const;
/** Records this big in one seed make the log kept after the snapshot several MiB, so cutting the log takes steps too. */
const BIG_RECORD_BYTES = 200 * 1024;

type Image = Partial<Record<(typeof FILES)[number], Uint8Array>>;

function busyScheduler(): Scheduler {
  const s = makeScheduler(OPTIONS);
  s.workerJoined(1, 20, [], 0);
  for (let i = 0; i < 300; i++) submitOk(s, i, { priority: i % 3, payload: new Uint8Array(i % 50), maxAttempts: 1, idempotencyKey: i % 2 === 0 ? `k${i}` : "" });
  s.dispatch(1000);
  const leased = [...s.takeReady().assignments.values()].flat();
  for (const [n, t] of leased.slice(0, 10).entries()) s.result(1, t.id, t.attempt, n % 3 === 0 ? FAIL : OK, new Uint8Array(3), 1001);
  s.takeReady();
  return s;
}

/** Changes the scheduler between parts, ahead of and behind the cut: new tasks, cancels, leases, results. */
function change(s: Scheduler, p: Prng, now: number): void {
  const roll = p.int(4);
  if (roll === 0) submitOk(s, now, { payload: new Uint8Array(p.int(40)) });
  else if (roll === 1) s.cancel(1 + p.int(320), now);
  else if (roll === 2) s.dispatch(now);
  else {
    const leased = [...s.takeReady().assignments.values()].flat();
    for (const t of leased) s.result(1, t.id, t.attempt, p.int(2) === 0, new Uint8Array(2), now);
  }
  s.takeReady();
}

function capture(dir: string): Image {
  const image: Image = {};
  for (const name of FILES) if (existsSync(join(dir, name))) image[name] = new Uint8Array(readFileSync(join(dir, name)));
  return image;
}

/** Recovers a copy of `image`; expects every record up to `lastIndex`, on top of the old snapshot or the new one. */
function expectRecovers(image: Image, lastIndex: number, snapshots: Map<number, SchedulerState>, what: string): number {
  const dir = newDir();
  mkdirSync(dir);
  for (const [name, bytes] of Object.entries(image)) if (bytes !== undefined) writeFileSync(join(dir, name), bytes);
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  const r = wal.recover();
  wal.close();
  const snapshotIndex = r.batches.length > 0 ? r.batches[0]!.firstIndex - 1 : r.index;
  expect({ what, index: r.index }).toEqual({ what, index: lastIndex });
  expect({ what, snapshotIndex, known: snapshots.has(snapshotIndex) }).toEqual({ what, snapshotIndex, known: true });
  expect(Scheduler.fromState(OPTIONS, r.state!).exportState()).toEqual(snapshots.get(snapshotIndex)!);
  return snapshotIndex;
}

function record(index: number, bytes = 4): Uint8Array {
  return new Uint8Array(bytes).fill(index & 0xff);
}

test("a crash at any step of a compaction leaves a data dir that recovers every record, and the log then holds only the records after the snapshot", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const p = new Prng(seed);
    const recordBytes = seed === 1 ? BIG_RECORD_BYTES : 4;
    let cutSteps = 0;
    const dir = newDir();
    const wal = new WriteAheadLog(dir, 64, quiet);
    const empty = makeScheduler(OPTIONS).exportState();
    wal.snapshot(1, 3, empty);
    let last = 3;
    const append = () => {
      last++;
      wal.append(1, last, 1, record(last, recordBytes));
    };
    for (let i = 0; i < 10; i++) append();
    const s = busyScheduler();
    const atStart = s.exportState();
    const startIndex = last;
    const snapshots = new Map([[3, empty], [startIndex, atStart]]);
    const compaction = new WalCompaction(wal, 1, startIndex, s, LIMITS);
    let steps = 0;
    let before = capture(dir);
    for (; !compaction.done && steps < STEPS_MAX; steps++) {
      if (p.int(3) === 0) append();
      change(s, p, 2000 + steps);
      before = capture(dir);
      expectRecovers(before, last, snapshots, `seed ${seed}, before step ${steps}`);
      if (before[WAL_TEMP_FILE] !== undefined) cutSteps++;
      compaction.step();
    }
    const after = capture(dir);
    expect(compaction.done).toBe(true);
    expect(steps).toBeGreaterThan(20); // in parts, not at once
    expect(after[COMPACTION_TEMP_FILE]).toBeUndefined();
    expect(after[WAL_TEMP_FILE]).toBeUndefined();
    if (seed === 1) expect(cutSteps).toBeGreaterThan(0); // the log was cut over several steps, crashes between them recovered
    // The new snapshot renamed into place, the log not yet cut: its records up to the snapshot are skipped.
    expectRecovers({ ...before, [SNAPSHOT_FILE]: after[SNAPSHOT_FILE], [COMPACTION_TEMP_FILE]: undefined }, last, snapshots, `seed ${seed}, renamed, log not cut`);
    expect(expectRecovers(after, last, snapshots, `seed ${seed}, done`)).toBe(startIndex);
    // Only the records appended during the compaction are left in the log.
    expect(wal.logBytes).toBe(after[WAL_FILE]!.length);
    const reopened = new WriteAheadLog(dir, 1 << 30, quiet);
    const r = reopened.recover();
    reopened.close();
    expect(r.batches.map((b) => b.firstIndex)).toEqual(Array.from({ length: last - startIndex }, (_, i) => startIndex + 1 + i));
    // Appends after it go on from there.
    append();
    wal.close();
    expectRecovers(capture(dir), last, snapshots, `seed ${seed}, appended after`);
  }
});

test("a snapshot from a primary installed meanwhile wins: the compaction gives up and removes its temp file", () => {
  const dir = newDir();
  const wal = new WriteAheadLog(dir, 64, quiet);
  for (let i = 1; i <= 5; i++) wal.append(1, i, 1, record(i));
  const compaction = new WalCompaction(wal, 1, 5, busyScheduler(), LIMITS);
  for (let i = 0; i < 5; i++) compaction.step();
  expect(existsSync(join(dir, COMPACTION_TEMP_FILE))).toBe(true);
  const primary = makeScheduler(OPTIONS).exportState();
  wal.snapshot(2, 40, primary);
  compaction.step();
  expect(compaction.done).toBe(true);
  expect(existsSync(join(dir, COMPACTION_TEMP_FILE))).toBe(false);
  wal.close();
  expectRecovers(capture(dir), 40, new Map([[40, primary]]), "primary's snapshot");
});

test("a snapshot from a primary installed while the log is being cut wins too: the partial copy goes", () => {
  const dir = newDir();
  const wal = new WriteAheadLog(dir, 64, quiet);
  wal.append(1, 1, 1, record(1));
  const compaction = new WalCompaction(wal, 1, 1, busyScheduler(), LIMITS);
  for (let i = 2; i <= 30; i++) wal.append(1, i, 1, record(i, BIG_RECORD_BYTES)); // ~6 MB kept: cut in steps
  for (let steps = 0; !existsSync(join(dir, WAL_TEMP_FILE)) && steps < STEPS_MAX; steps++) compaction.step();
  expect(existsSync(join(dir, WAL_TEMP_FILE))).toBe(true);
  const primary = makeScheduler(OPTIONS).exportState();
  wal.snapshot(2, 40, primary);
  expect(existsSync(join(dir, WAL_TEMP_FILE))).toBe(false);
  compaction.step();
  expect(compaction.done).toBe(true);
  wal.append(2, 41, 1, record(41));
  wal.close();
  expectRecovers(capture(dir), 41, new Map([[40, primary]]), "primary's snapshot, then an append");
});

test("given up at any step before its install, a compaction leaves no temp file behind", () => {
  // Every step: abandoned by a primary's snapshot (even/odd alternate with the process
  // stopping, abandon() called directly); the last steps include the one where the
  // file is whole and closed but not yet installed.
  let sawClosedFile = false;
  let steps = 0;
  for (; steps < STEPS_MAX; steps++) {
    const dir = newDir();
    const wal = new WriteAheadLog(dir, 64, quiet);
    for (let i = 1; i <= 5; i++) wal.append(1, i, 1, record(i));
    const compaction = new WalCompaction(wal, 1, 5, busyScheduler(), LIMITS);
    for (let i = 0; i < steps; i++) compaction.step();
    if (wal.snapshotsInstalled > 0) {
      wal.close();
      break; // installed: from here on there is no temp file to leave
    }
    const temp = join(dir, COMPACTION_TEMP_FILE);
    if (existsSync(temp) && Buffer.from(readFileSync(temp).subarray(0, SNAPSHOT_MAGIC.length)).equals(SNAPSHOT_MAGIC)) sawClosedFile = true;
    if (steps % 2 === 0) {
      wal.snapshot(2, 40, makeScheduler(OPTIONS).exportState());
      compaction.step();
    } else {
      compaction.abandon();
    }
    expect({ steps, done: compaction.done, temp: existsSync(temp) }).toEqual({ steps, done: true, temp: false });
    wal.close();
  }
  expect(steps).toBeLessThan(STEPS_MAX);
  expect(sawClosedFile).toBe(true);
});
