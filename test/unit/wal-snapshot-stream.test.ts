// A backup's snapshot file written part by part as the snapshot streams in
// (src/coordinator/wal-snapshot-stream.ts) is a snapshot file recovery reads back
// as the state that was streamed; one given up leaves the last snapshot as it was.

import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "../../src/cli/log.ts";
import { WriteAheadLog } from "../../src/coordinator/wal.ts";
import { SnapshotFileStream } from "../../src/coordinator/wal-snapshot-stream.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import type { SnapshotPart } from "../../src/core/snapshot-parts.ts";
import { FAIL, makeScheduler, OK, submitOk, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "wal-snapshot-stream-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = new Logger("test", "error");
let dirs = 0;

const OPTIONS = { ...TEST_OPTIONS, queueMax: 10_000, retainedMax: 10_000, dlqMax: 10_000 };

function busyScheduler(): Scheduler {
  const s = makeScheduler(OPTIONS);
  s.workerJoined(1, 20, [], 0);
  for (let i = 0; i < 500; i++) submitOk(s, i, { priority: i % 3, payload: new Uint8Array(i % 50), maxAttempts: 1, idempotencyKey: i % 2 === 0 ? `k${i}` : "" });
  s.dispatch(1000);
  const leased = [...s.takeReady().assignments.values()].flat();
  for (const [n, t] of leased.slice(0, 15).entries()) s.result(1, t.id, t.attempt, n % 3 === 0 ? FAIL : OK, new Uint8Array(3), 1001);
  s.takeReady();
  return s;
}

function partsOf(s: Scheduler): SnapshotPart[] {
  const e = s.startExport({ bytesMax: 2000, idsMax: 7 });
  const parts: SnapshotPart[] = [];
  for (let p = e.next(); p !== undefined; p = e.next()) parts.push(structuredClone(p));
  return parts;
}

function streamed(wal: WriteAheadLog, parts: SnapshotPart[], epoch: number, index: number): SnapshotFileStream {
  const head = parts[0]!;
  if (head.k !== "head") throw new Error("no head");
  const file = new SnapshotFileStream(wal, epoch, index, head.head);
  for (const p of parts.slice(1)) file.add(p);
  return file;
}

test("written part by part, recovery reads back the state streamed", () => {
  const s = busyScheduler();
  const dir = join(root, `d${dirs++}`);
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  wal.append(1, 1, 1, new Uint8Array([3, 0, 0, 0, 1, 2, 3]));
  streamed(wal, partsOf(s), 4, 77).finish();
  wal.close();
  const recovered = new WriteAheadLog(dir, 1 << 30, quiet).recover();
  expect({ epoch: recovered.epoch, index: recovered.index, batches: recovered.batches.length }).toEqual({ epoch: 4, index: 77, batches: 0 });
  expect(Scheduler.fromState(OPTIONS, recovered.state!).exportState()).toEqual(s.exportState());
});

test("given up, the temp file goes and the last snapshot stays", () => {
  const s = busyScheduler();
  const dir = join(root, `d${dirs++}`);
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  wal.snapshot(2, 10, makeScheduler(OPTIONS).exportState());
  const before = readFileSync(wal.snapshotFile);
  streamed(wal, partsOf(s), 3, 20).abandon();
  expect(existsSync(wal.snapshotTempFile)).toBe(false);
  expect(readFileSync(wal.snapshotFile)).toEqual(before);
  wal.close();
});
