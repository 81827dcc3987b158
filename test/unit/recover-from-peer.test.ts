// --recover-from-peer at start-up: the data directory's files are moved into a
// dated set-aside directory (never deleted, bytes unchanged), the node opens an
// empty log, and in etcd mode it takes a new replica id; the flag is refused
// where there is nothing to rebuild or no one to rebuild from.

import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseFlags } from "../../src/cli/flags.ts";
import { Logger } from "../../src/cli/log.ts";
import { coordinatorConfig } from "../../src/coordinator/main.ts";
import { COORDINATOR_FLAGS } from "../../src/coordinator/flag-table.ts";
import { openDataDir, setAsideDataDir } from "../../src/coordinator/recovery.ts";
import { WriteAheadLog } from "../../src/coordinator/wal.ts";
import { Scheduler } from "../../src/core/scheduler.ts";

const root = mkdtempSync(join(tmpdir(), "recover-from-peer-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = new Logger("test", "error", () => {});
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

const config = (args: string[]) => coordinatorConfig(parseFlags(COORDINATOR_FLAGS, ["-p", "5000", ...args], {}));

/** A data dir as a coordinator leaves it: a log with one batch, a snapshot, a leftover temp snapshot, a replica id. */
function usedDataDir(): { dir: string; files: Record<string, Uint8Array<ArrayBuffer>> } {
  const dir = freshDir();
  const wal = new WriteAheadLog(dir, 1 << 30, quiet);
  wal.recover();
  wal.snapshot(1, 0, new Scheduler(config([]).scheduler).exportState());
  wal.append(1, 1, 1, new Uint8Array([1, 0, 0, 0, 7]));
  wal.close();
  writeFileSync(join(dir, "snapshot.bin.tmp"), new Uint8Array([1, 2, 3]));
  writeFileSync(join(dir, "replica-id"), "coordinator-5000-0123456789ab\n");
  const files = Object.fromEntries(["wal.log", "snapshot.bin", "snapshot.bin.tmp", "replica-id"].map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
  return { dir, files };
}

test("a set-aside moves the log, snapshots and replica id, unchanged, into a dated directory; nothing is deleted", () => {
  const { dir, files } = usedDataDir();
  writeFileSync(join(dir, "notes.txt"), "an operator's file stays where it is");
  const to = setAsideDataDir(dir, new Date("2026-03-04T05:06:07.089Z"));
  expect(to).toBe(join(dir, "set-aside-2026-03-04T05-06-07-089Z"));
  expect(readdirSync(dir).sort()).toEqual(["notes.txt", "set-aside-2026-03-04T05-06-07-089Z"]);
  for (const [name, bytes] of Object.entries(files)) expect(new Uint8Array(readFileSync(join(to, name)))).toEqual(bytes);
  // The same instant again (a restart within a millisecond) gets its own directory.
  writeFileSync(join(dir, "wal.log"), "x");
  expect(setAsideDataDir(dir, new Date("2026-03-04T05:06:07.089Z"))).toBe(`${to}-2`);
  // Nothing to set aside: no directory.
  const empty = freshDir();
  mkdirSync(empty);
  expect(setAsideDataDir(empty, new Date())).toBe("");
  expect(readdirSync(empty)).toEqual([]);
});

test("--recover-from-peer opens an empty log, and in etcd mode takes a new replica id outside the old ISR", () => {
  const { dir, files } = usedDataDir();
  const c = config(["--etcd", "127.0.0.1:2379", "--data-dir", dir, "--recover-from-peer"]);
  const oldId = c.etcd!.replicaId;
  expect(oldId).toBe("coordinator-5000-0123456789ab"); // read from the data dir at start-up, as without the flag
  const opened = openDataDir(c, quiet, new Scheduler(c.scheduler));
  opened.wal.close();
  expect({ index: opened.recovered.index, state: opened.recovered.state, batches: opened.recovered.batches.length }).toEqual({ index: 0, state: undefined, batches: 0 });
  expect(opened.setAsideTo).toStartWith(join(dir, "set-aside-"));
  expect(new Uint8Array(readFileSync(join(opened.setAsideTo!, "wal.log")))).toEqual(files["wal.log"]!);
  const newId = readFileSync(join(dir, "replica-id"), "utf8").trim();
  expect({ changed: newId !== oldId, inConfig: c.etcd!.replicaId === newId }).toEqual({ changed: true, inConfig: true });
});

test("without the flag a damaged data dir is refused and left alone; with it, the damaged files are set aside", () => {
  const { dir, files } = usedDataDir();
  const damaged = files["wal.log"]!.slice();
  damaged[damaged.length - 1]! ^= 1;
  writeFileSync(join(dir, "wal.log"), damaged);
  const c = config(["--peer", "127.0.0.1:5001", "--data-dir", dir]);
  expect(() => openDataDir(c, quiet, new Scheduler(c.scheduler))).toThrow(/wal\.log at byte offset 0: checksum mismatch/);
  expect(readdirSync(dir).some((f) => f.startsWith("set-aside-"))).toBe(false);
  const opened = openDataDir({ ...c, recoverFromPeer: true }, quiet, new Scheduler(c.scheduler));
  opened.wal.close();
  expect(new Uint8Array(readFileSync(join(opened.setAsideTo!, "wal.log")))).toEqual(damaged);
  expect(existsSync(join(dir, "wal.log")) && readFileSync(join(dir, "wal.log")).length).toBe(0);
});

test("--recover-from-peer needs a data directory and a replica to rebuild from", () => {
  expect(() => config(["--peer", "127.0.0.1:5001", "--recover-from-peer"])).toThrow(/--data-dir/);
  expect(() => config(["--data-dir", freshDir(), "--recover-from-peer"])).toThrow(/--peer or --etcd/);
  expect(config(["--peer", "127.0.0.1:5001", "--data-dir", freshDir(), "--recover-from-peer"]).recoverFromPeer).toBe(true);
  expect(config(["--peer", "127.0.0.1:5001", "--data-dir", freshDir()]).recoverFromPeer).toBe(false);
});
