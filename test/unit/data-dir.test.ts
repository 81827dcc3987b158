// DataDir with --fsync-interval-ms: its timer syncs what was appended, and nothing
// when nothing was; a clean close syncs the rest; a failed sync stops the process
// (onFailure) like a failed append does.

import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "../../src/cli/log.ts";
import { DataDir } from "../../src/coordinator/data-dir.ts";
import { WriteAheadLog } from "../../src/coordinator/wal.ts";
import { waitFor } from "../e2e/harness.ts";

const root = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "data-dir-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = new Logger("test", "error");
const ONE_ENTRY = new Uint8Array([3, 0, 0, 0, 1, 2, 3]);

function open(name: string, intervalMs: number): { wal: WriteAheadLog; disk: DataDir; failures: () => number } {
  const wal = new WriteAheadLog(join(root, name), 1 << 30, quiet, intervalMs);
  wal.recover();
  let failures = 0;
  return { wal, disk: new DataDir(wal, join(root, name), quiet, () => failures++), failures: () => failures };
}

test("the interval timer syncs appends off the event loop, once per interval at most, and none while idle", async () => {
  const { wal, disk } = open("timer", 20);
  for (let i = 1; i <= 5; i++) expect(disk.write((w) => w.append(1, i, 1, ONE_ENTRY))).toBe(true);
  expect(wal.stats().syncs).toBe(0);
  await waitFor("the timer's sync", () => (wal.stats().syncs === 1 ? true : undefined), 5_000);
  await Bun.sleep(100); // five intervals with nothing appended
  expect(wal.stats().syncs).toBe(1);
  disk.write((w) => w.append(1, 6, 1, ONE_ENTRY));
  disk.close();
  expect(wal.stats().syncs).toBe(2); // the clean stop synced the last append
});

test("a sync that fails stops the process like a failed append", async () => {
  const { wal, disk, failures } = open("fails", 10);
  disk.write((w) => w.append(1, 1, 1, ONE_ENTRY));
  wal.syncInBackground = (failed) => void queueMicrotask(() => failed(new Error("EIO: i/o error, fdatasync")));
  await waitFor("the failure", () => (failures() === 1 ? true : undefined), 5_000);
  expect(disk.failed).toBe(true);
  expect(disk.write((w) => w.append(1, 2, 1, ONE_ENTRY))).toBe(false);
  disk.close();
  await Bun.sleep(50);
  expect(failures()).toBe(1); // failed once, then nothing more was tried
});
