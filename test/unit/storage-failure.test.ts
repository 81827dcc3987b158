// A data directory write that fails stops the coordinator before anything it
// covers is acknowledged: the batch is already out of the in-memory log, so
// carrying on (as the connection handler used to, logging one error) let a
// primary without backups acknowledge entries no disk held.

import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "../../src/cli/log.ts";
import { Coordinator, type CoordinatorConfig } from "../../src/coordinator/coordinator.ts";
import type { WriteAheadLog } from "../../src/coordinator/wal.ts";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { testCoordinatorConfig } from "../support/coordinator-config.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function config(dataDir: string): CoordinatorConfig {
  return testCoordinatorConfig({ nodeId: "disk-fail", backupTimeoutMs: 1_000, dataDir });
}

// The primary writes a group commit, sends it, then syncs it (core/replication-step.ts): either failing stops it.
test.each(["writeRecord", "syncCommit"] as const)("a failed write-ahead log %s stops the coordinator and acknowledges nothing it covers", async (step) => {
  const dir = mkdtempSync(join(tmpdir(), "disk-fail-"));
  const lines: string[] = [];
  let fatalCalls = 0;
  const coordinator = new Coordinator(config(dir), new Logger("coordinator", "info", (line) => void lines.push(line)), () => void fatalCalls++);
  coordinator.start();
  cleanups.push(() => {
    coordinator.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const client = await SchedulerClient.connect(`127.0.0.1:${coordinator.port}`);
  cleanups.unshift(() => client.close());
  // Healthy disk: acknowledged.
  expect(await client.submit("sleep", { ms: 1 })).toBeGreaterThan(0);

  // The disk fails (ENOSPC on the write, EIO from fdatasync): the next one throws.
  const wal = (coordinator as unknown as { disk: { wal: WriteAheadLog } }).disk.wal;
  wal[step] = () => {
    throw new Error(`EIO: i/o error, ${step}`);
  };
  let acknowledged = false;
  client.submit("sleep", { ms: 1 }).then(() => void (acknowledged = true), () => undefined);
  for (let i = 0; i < 200 && fatalCalls === 0; i++) await Bun.sleep(5);
  expect(fatalCalls).toBe(1);
  expect(lines.some((l) => l.includes("data directory write failed; stopping"))).toBe(true);
  // Ticks and reads go on until the process exits: none of them may release the reply.
  await Bun.sleep(100);
  expect(acknowledged).toBe(false);
  expect(fatalCalls).toBe(1);
});
