// Graceful shutdown from the compiled binaries: SIGTERM to a primary hands the
// shard over to its backup; SIGTERM to a worker lets its running tasks finish.

import { afterEach, expect, test } from "bun:test";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { Cluster, parseReport, waitFor } from "./harness.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

test("SIGTERM to the primary mid-run: handover to the backup, every task completes once", async () => {
  cluster = new Cluster();
  const nodes = await cluster.replicas(2, ["--log-level", "info"]);
  const ports = nodes.map((n) => n.port);
  cluster.worker(ports, ["-w", "2"]);
  const router = await cluster.router(ports);
  const primaryPort = await waitFor("a primary with an in-sync backup", async () => {
    const stats = await cluster.stats(router.port);
    const p = stats.coordinators.find((c) => c.stats?.primary && c.stats.replication.backupsInSync === 1 && c.stats.workers.length === 1);
    return p ? Number(p.address.split(":").at(-1)) : undefined;
  });
  const run = cluster.client(["-p", String(router.port), "-n", "20000", "-c", "64", "-t", "mixed", "--json"]);
  const survivor = nodes.find((n) => n.port !== primaryPort)!;
  await waitFor("a quarter of the run", async () => ((await cluster.stats(survivor.port)).coordinators[0]!.stats!.completed > 5000 ? true : undefined));
  const primary = nodes.find((n) => n.port === primaryPort)!;
  const termAt = Date.now();
  primary.proc.kill("SIGTERM");
  expect(await primary.proc.exited).toBe(0);
  const promoted = await waitFor("the backup's promotion", async () => ((await cluster.stats(survivor.port)).coordinators[0]!.stats!.primary ? Date.now() : undefined));
  expect(promoted).toBeGreaterThanOrEqual(termAt);
  // The backup took over because it was told to, not because the primary fell silent.
  expect(primary.output()).toContain('"event":"handed over"');
  expect(survivor.output()).toContain('"event":"primary handed over"');
  const report = parseReport(await run);
  expect(report.completed).toBe(20000);
  expect(report.failed).toBe(0);
  const s = (await cluster.stats(survivor.port)).coordinators[0]!.stats!;
  expect(s.submitted).toBe(20000);
});

test("SIGTERM to a worker: it takes nothing new and its running tasks finish there", async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  const leaving = cluster.worker([coordinator.port], ["-w", "1", "--thread-concurrency", "4", "--log-level", "info"]);
  await cluster.workersJoined(coordinator.port, 1);
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: coordinator.port });
  const first = await Promise.all(Array.from({ length: 4 }, () => client.submit("sleep", { ms: 800 })));
  await waitFor("all four running", async () => ((await client.clusterStats()).coordinators[0]!.stats!.leased === 4 ? true : undefined));
  leaving.proc.kill("SIGTERM");
  await waitFor("the worker to start draining", () => (leaving.output().includes('"event":"stopping"') ? true : undefined));
  await waitFor("the coordinator to mark it draining", async () => {
    const stats = await client.clusterStats();
    return stats.coordinators[0]!.stats!.workers.length === 1 ? true : undefined;
  });
  // A task submitted now waits: the draining worker gets no new work.
  const later = await client.submit("noop", undefined);
  const outcomes = await Promise.all(first.map((id) => client.wait(id)));
  expect(outcomes.every((o) => o.ok && o.attempts === 1)).toBe(true);
  expect(await leaving.proc.exited).toBe(0);
  expect((await client.task(later)).state).toBe("queued");
  // A fresh worker picks it up.
  cluster.worker([coordinator.port], ["-w", "1"]);
  expect((await client.wait(later)).ok).toBe(true);
  client.close();
});
