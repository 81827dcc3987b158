// Primary/backup replication from the compiled binaries: kill -9 the primary
// (or the backup) in the middle of a run and lose nothing; a restarted old
// primary rejoins as a backup.

import { afterEach, expect, test } from "bun:test";
import type { ClusterStats, CoordinatorStats } from "../../src/protocol/messages.ts";
import { Cluster, parseReport, waitFor, type Started } from "./harness.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

const TASKS = 20000;

function byRole(stats: ClusterStats, role: "primary" | "backup"): CoordinatorStats | undefined {
  return stats.coordinators.find((c) => c.stats?.replication.role === role)?.stats;
}

/** A replica pair, a router in front, two workers that know both replicas. */
async function replicatedShard(): Promise<{ nodes: Started[]; routerPort: number }> {
  cluster = new Cluster();
  const nodes = await cluster.replicas(2);
  const ports = nodes.map((n) => n.port);
  cluster.worker(ports, ["-w", "1"]);
  cluster.worker(ports, ["-w", "1"]);
  const router = await cluster.router(ports);
  await waitFor("a primary with an in-sync backup and both workers", async () => {
    const stats = await cluster.stats(router.port);
    const primary = byRole(stats, "primary");
    return primary && primary.replication.backupsInSync === 1 && primary.workers.length === 2 ? true : undefined;
  });
  return { nodes, routerPort: router.port };
}

async function killMidRun(role: "primary" | "backup") {
  const { nodes, routerPort } = await replicatedShard();
  const run = cluster.client(["-p", String(routerPort), "-n", String(TASKS), "-c", "64", "-t", "mixed", "--json"]);
  const victim = await waitFor("half the run", async () => {
    const stats = await cluster.stats(routerPort);
    const primary = byRole(stats, "primary");
    if (primary === undefined || primary.completed < TASKS / 2) return undefined;
    const victimId = role === "primary" ? primary.nodeId : byRole(stats, "backup")?.nodeId;
    return nodes.find((n) => victimId === `coordinator-${n.port}`);
  });
  victim.proc.kill("SIGKILL");
  const result = await run;
  const report = parseReport(result);
  expect(report.completed).toBe(TASKS);
  expect(report.failed).toBe(0);
  expect(result.code).toBe(0);
  const survivor = nodes.find((n) => n !== victim)!;
  const stats = await cluster.stats(survivor.port);
  const s = stats.coordinators[0]!.stats!;
  expect(s.primary).toBe(true);
  // Every task exactly once in the record: retries under idempotency keys made no duplicates.
  expect(s.submitted).toBe(TASKS);
  expect(s.completed).toBe(TASKS);
  return { victim, survivor, nodes, routerPort, stats: s };
}

test("kill -9 the primary half-way: the backup takes over and every task completes once", async () => {
  const { stats } = await killMidRun("primary");
  expect(stats.epoch).toBe(2);
});

test("kill -9 the backup half-way: the primary goes on alone and every task completes once", async () => {
  const { stats } = await killMidRun("backup");
  expect(stats.epoch).toBe(1);
  expect(stats.replication.alone).toBe(true);
});

test("a restarted old primary rejoins as a backup with the full state", async () => {
  const { victim, survivor, nodes, routerPort } = await killMidRun("primary");
  await cluster.replica(victim.port, nodes.map((n) => n.port));
  const rejoined = await waitFor("the old primary to be an in-sync backup", async () => {
    const s = (await cluster.stats(victim.port)).coordinators[0]!.stats!;
    const p = (await cluster.stats(survivor.port)).coordinators[0]!.stats!;
    return s.replication.role === "backup" && p.replication.backupsInSync === 1 ? s : undefined;
  });
  expect(rejoined.epoch).toBe(2);
  expect(rejoined.submitted).toBe(TASKS);
  // And the shard keeps working with it in place.
  const report = parseReport(await cluster.client(["-p", String(routerPort), "-n", "2000", "-c", "32", "--json"]));
  expect(report.completed).toBe(2000);
});
