// --data-dir from the compiled binaries: kill -9 every coordinator of a shard
// while workers are busy, restart them, and every acknowledged task ends
// completed (executions may repeat; the record holds each task once). Also with
// --fsync-interval-ms, where the last second of appends is only written when the
// processes die: the page cache outlives a process, so nothing is lost to kill -9.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { Cluster, freePort, waitFor } from "./harness.ts";

const dataRoot = mkdtempSync(join(tmpdir(), "durability-"));
const clusters: Cluster[] = [];
afterAll(async () => {
  for (const c of clusters) await c.stopAll();
  rmSync(dataRoot, { recursive: true, force: true });
});

const TASKS = 20000;

test.each([
  ["fsynced before each acknowledgement", []],
  ["fsynced every second (--fsync-interval-ms 1000)", ["--fsync-interval-ms", "1000"]],
])("a whole-shard crash loses no acknowledged task: %s", async (_mode, extra: string[]) => {
  const cluster = new Cluster();
  clusters.push(cluster);
  const ports = [freePort(), freePort()];
  const dirs = ports.map((p) => join(dataRoot, String(p)));
  const start = (i: number) => cluster.replica(ports[i]!, ports, ["--data-dir", dirs[i]!, "--wal-bytes-max", String(256 * 1024), ...extra]);
  let nodes = await Promise.all([start(0), start(1)]);
  cluster.worker(ports, ["-w", "2"]);
  const router = await cluster.router(ports);
  await waitFor("a primary with an in-sync backup and the worker", async () => {
    const s = await cluster.stats(router.port);
    return s.coordinators.some((c) => c.stats?.primary && c.stats.replication.backupsInSync === 1 && c.stats.workers.length === 1) ? true : undefined;
  });

  // Submit in batches, keeping the ids the cluster acknowledged, until the crash.
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  const acknowledged: number[] = [];
  let crashed = false;
  const submitting = (async () => {
    for (let i = 0; i < TASKS && !crashed; i += 200) {
      const batch = Array.from({ length: 200 }, (_, j) => ({ type: "sleep", payload: { ms: 1 }, options: { idempotencyKey: `t${i + j}` } }));
      const results = await Promise.allSettled(batch.map((t) => client.submit(t.type, t.payload, t.options)));
      for (const r of results) if (r.status === "fulfilled") acknowledged.push(r.value);
    }
  })();
  await waitFor("the workers to be busy with a third of the tasks", async () => {
    const s = await cluster.stats(router.port);
    const primary = s.coordinators.find((c) => c.stats?.primary)?.stats;
    return primary && primary.completed > TASKS / 6 && primary.leased > 0 ? true : undefined;
  });
  crashed = true;
  for (const n of nodes) n.proc.kill("SIGKILL");
  await Promise.all(nodes.map((n) => n.proc.exited));
  await submitting;
  client.close();
  expect(acknowledged.length).toBeGreaterThan(TASKS / 6);

  // Both come back from their data directories.
  nodes = await Promise.all([start(0), start(1)]);
  const after = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  await waitFor("a primary again", async () => {
    const s = await after.clusterStats();
    return s.coordinators.some((c) => c.stats?.primary) ? true : undefined;
  }, 30_000);
  const outcomes = await Promise.all(acknowledged.map((id) => after.wait(id)));
  const notCompleted = outcomes.filter((o) => !o.ok);
  expect(notCompleted).toEqual([]);
  expect(new Set(acknowledged).size).toBe(acknowledged.length);
  const s = (await after.clusterStats()).coordinators.find((c) => c.stats?.primary)!.stats!;
  // Each task once in the record: no acknowledged task was lost, none was created twice.
  expect(s.submitted).toBeGreaterThanOrEqual(acknowledged.length);
  expect(s.completed).toBe(s.submitted - s.queued - s.leased - s.waiting - s.delayed);
  after.close();
}, 120_000);

test("an idle pair with --data-dir writes no log records, the backup does not take over, and replication goes on after", async () => {
  const idle = new Cluster();
  try {
    const ports = [freePort(), freePort()];
    const nodes = await Promise.all(ports.map((port, i) => idle.replica(port, ports, ["--data-dir", join(dataRoot, `idle-${i}`)])));
    const roles = async () => {
      const all = await Promise.all(nodes.map((n) => idle.stats(n.port)));
      return all.map((s) => s.coordinators[0]!.stats!);
    };
    await waitFor("a primary with its backup in sync", async () => {
      const [a, b] = await roles();
      return [a!, b!].some((s) => s.primary && s.replication.backupsInSync === 1) ? true : undefined;
    });
    const before = await roles();
    // Four failover timeouts (400 ms each) with nothing to do: ticks that change nothing are not logged
    // (they were, 20 a second, each fsynced), and the backup still hears the primary every tick.
    await Bun.sleep(1600);
    const after = await roles();
    for (const [i, s] of after.entries()) {
      expect(s.primary).toBe(before[i]!.primary);
      expect(s.epoch).toBe(before[i]!.epoch);
      expect(s.wal!.commits - before[i]!.wal!.commits).toBeLessThanOrEqual(2);
      // Silence would not promote the backup (it sees the primary alive) but reset its link and resync.
      expect(nodes[i]!.output()).not.toContain("primary silent");
    }
    const primaryPort = nodes[after.findIndex((s) => s.primary)]!.port;
    const client = await SchedulerClient.connect({ host: "127.0.0.1", port: primaryPort });
    try {
      // Acknowledged only once the backup holds it: the empty appends left the log's indexes in step.
      expect(typeof (await client.submit("noop", undefined))).toBe("number");
    } finally {
      client.close();
    }
  } finally {
    await idle.stopAll();
  }
});
