// An idle-but-queued shard from the compiled binaries: a primary and its backup
// (static --peer, --data-dir), one worker with one slot busy on a long sleep and
// 1,000 tasks queued behind it. Nothing can be dispatched, so neither replica
// may log, commit or fsync anything while it waits (a pair once spun here,
// logging a dispatch per backup acknowledgement), and the first entry after the
// quiet must find the backup still in sync.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CoordinatorStats } from "../../src/protocol/messages.ts";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { Cluster, freePort, holdsFor, waitFor } from "./harness.ts";

const QUEUED = 1_000;
const SUBMIT_BATCH = 100;
/** How long the pair must stay quiet: a few seconds, as the issue asks. */
const QUIET_MS = 3_000;
/** Longer than the test: the running task must still run when the quiet ends. */
const LONG_TASK_MS = 60_000;
// Worker liveness and leases are replicated: a primary logs a held heartbeat when a lease or the
// worker would otherwise expire, about once per min(lease, worker timeout). Both far above QUIET_MS,
// so the only entries the window could see are the ones this test is about.
const LIVENESS_MS = "30000";

const dataRoot = mkdtempSync(join(tmpdir(), "idle-queued-"));
const cluster = new Cluster();
afterAll(async () => {
  await cluster.stopAll();
  rmSync(dataRoot, { recursive: true, force: true });
});

/** What grows with every log entry and fsync on one replica. */
function writes(s: CoordinatorStats): Record<string, number> {
  return { appliedIndex: s.replication.appliedIndex, committedIndex: s.replication.committedIndex, walCommits: s.wal!.commits, walEntries: s.wal!.entries };
}

test("a pair with 1,000 tasks queued behind one busy worker slot logs, commits and fsyncs nothing, and keeps its backup for the next entry", async () => {
  const ports = [freePort(), freePort()];
  const nodes = await Promise.all(ports.map((port, i) => cluster.replica(port, ports, [
    "--data-dir", join(dataRoot, String(i)), "--worker-timeout-ms", LIVENESS_MS, "--lease-ms", LIVENESS_MS,
  ])));
  cluster.worker(ports, ["-w", "1", "--thread-concurrency", "1"]);
  const clients = await Promise.all(ports.map((port) => SchedulerClient.connect({ host: "127.0.0.1", port })));
  const stats = async () => Promise.all(clients.map(async (c) => (await c.clusterStats()).coordinators[0]!.stats!));
  try {
    const primaryAt = await waitFor("a primary with its backup in sync and the worker", async () => {
      const all = await stats();
      const i = all.findIndex((s) => s.primary && s.replication.backupsInSync === 1 && s.workers.length === 1);
      return i >= 0 ? i : undefined;
    });
    const primary = clients[primaryAt]!;
    await primary.submit("sleep", { ms: LONG_TASK_MS }, { timeoutMs: 2 * LONG_TASK_MS });
    for (let i = 0; i < QUEUED; i += SUBMIT_BATCH) {
      await primary.submitMany(Array.from({ length: SUBMIT_BATCH }, (_, j) => ({ type: "noop", options: { idempotencyKey: `q${i + j}` } })));
    }
    const settled = await waitFor("the long task running, the rest queued, and the backup holding every entry", async () => {
      const all = await stats();
      const p = all[primaryAt]!;
      const everywhere = all.every((s) => s.replication.appliedIndex === p.replication.appliedIndex);
      return p.leased === 1 && p.queued === QUEUED && p.replication.committedIndex === p.replication.appliedIndex && everywhere ? all : undefined;
    });

    await holdsFor("no log entry, commit or fsync on either replica", async () => {
      const now = await stats();
      return now.every((s, i) => JSON.stringify(writes(s)) === JSON.stringify(writes(settled[i]!)));
    }, QUIET_MS);
    const after = await stats();
    expect(after.map(writes)).toEqual(settled.map(writes));
    expect(after.map((s) => [s.primary, s.queued, s.leased])).toEqual(settled.map((s) => [s.primary, QUEUED, 1]));

    // The quiet outlasted --backup-timeout-ms: the next entry is acknowledged by the same backup, not after a resync.
    await primary.submit("noop", undefined, { idempotencyKey: "after-the-quiet" });
    const last = await stats();
    expect(last[primaryAt]!.replication.backupsInSync).toBe(1);
    expect(last.map((s) => s.wal!.snapshots)).toEqual(settled.map((s) => s.wal!.snapshots));
    expect(nodes[primaryAt]!.output()).not.toContain("acknowledged nothing");
  } finally {
    for (const c of clients) c.close();
  }
}, 60_000);
