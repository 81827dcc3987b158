// Routers and workers that find coordinators in etcd (--etcd) instead of a list:
// plain coordinators (they know nothing of etcd) are registered by hand under
// member keys; a key put is a coordinator dialled, a key deleted one dropped.

import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { EtcdClient } from "../../src/net/etcd-client.ts";
import { memberKey, type MemberRecord } from "../../src/net/etcd-keys.ts";
import type { ClusterStats } from "../../src/protocol/messages.ts";
import { etcdAvailable, startEtcd, type EtcdServer } from "../support/etcd-server.ts";
import { Cluster, parseReport, waitFor, type Started } from "./harness.ts";

const PREFIX = "/e2e-discovery";
const TASKS = 2000;

if (!etcdAvailable()) console.warn("SKIP etcd discovery e2e: no etcd binary (Debian: apt-get install etcd-server)");

let etcd: EtcdServer | undefined;
let client: EtcdClient | undefined;
let cluster: Cluster | undefined;
beforeAll(async () => {
  if (!etcdAvailable()) return;
  etcd = await startEtcd();
  client = new EtcdClient([etcd.endpoint]);
});
afterEach(async () => {
  await cluster?.stopAll();
});
afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

function record(c: Started, shard: number, replicaId: string): MemberRecord {
  return { nodeId: `coordinator-${c.port}`, replicaId, address: `127.0.0.1:${c.port}`, shard };
}

const register = (m: MemberRecord) => client!.put(memberKey(PREFIX, m.shard, m.replicaId), JSON.stringify(m));

function listed(stats: ClusterStats, c: Started) {
  return stats.coordinators.find((s) => s.address === `127.0.0.1:${c.port}`);
}

/** Runs the client through the router; every task must complete. Returns the per-coordinator stats after. */
async function runAll(routerPort: number): Promise<ClusterStats> {
  const run = await cluster!.client(["-p", String(routerPort), "-n", String(TASKS), "-c", "32", "--json"]);
  const report = parseReport(run);
  expect(report.completed).toBe(TASKS);
  expect(report.failed).toBe(0);
  expect(run.code).toBe(0);
  return cluster!.stats(routerPort);
}

test.skipIf(!etcdAvailable())("router and worker follow the coordinators registered in etcd as they come and go", async () => {
  cluster = new Cluster();
  const shard0 = await cluster.coordinator(["--shard", "0"]);
  const shard1 = await cluster.coordinator(["--shard", "1"]);
  const m0 = record(shard0, 0, "r0");
  const m1 = record(shard1, 1, "r1");
  await register(m0);
  await register(m1);
  const etcdFlags = ["--etcd", etcd!.endpoint, "--etcd-prefix", PREFIX, "--log-level", "warn"];
  // No -s/--servers and no -p: everything comes from etcd.
  const router = await cluster.server("router", etcdFlags);
  cluster.spawn("worker", [...etcdFlags, "-w", "2"]);
  await cluster.workersJoined(router.port, 2);

  const first = await runAll(router.port);
  expect(listed(first, shard0)?.stats?.completed).toBeGreaterThan(0);
  expect(listed(first, shard1)?.stats?.completed).toBeGreaterThan(0);
  expect(listed(first, shard0)!.stats!.completed + listed(first, shard1)!.stats!.completed).toBe(TASKS);

  // Its key deleted, shard 1's coordinator is dropped by the router (and the worker), though it still runs.
  await client!.delete(memberKey(PREFIX, 1, "r1"));
  await waitFor("the router to drop the deleted coordinator", async () => (listed(await cluster!.stats(router.port), shard1) === undefined ? true : undefined));
  const completedBeforeRemoval = (await cluster.stats(shard1.port)).coordinators[0]!.stats!.completed;
  await waitFor("the worker to leave the deleted coordinator", async () => ((await cluster!.stats(shard1.port)).coordinators[0]!.stats!.workers.length === 0 ? true : undefined));

  // A new coordinator for shard 1, registered by a put, is picked up by both.
  const replacement = await cluster.coordinator(["--shard", "1"]);
  await register(record(replacement, 1, "r1-new"));
  await waitFor("the router and worker to reach the new coordinator", async () => {
    const s = listed(await cluster!.stats(router.port), replacement);
    return s?.reachable && s.stats?.primary && s.stats.workers.length === 1 ? true : undefined;
  });

  const second = await runAll(router.port);
  expect(second.coordinators.map((c) => c.address).sort()).toEqual([`127.0.0.1:${replacement.port}`, `127.0.0.1:${shard0.port}`].sort());
  expect(listed(second, replacement)?.stats?.completed).toBeGreaterThan(0);
  expect(listed(second, shard0)!.stats!.completed + listed(second, replacement)!.stats!.completed).toBe(2 * TASKS - listed(first, shard1)!.stats!.completed);
  // The dropped one got nothing more.
  expect((await cluster.stats(shard1.port)).coordinators[0]!.stats!.completed).toBe(completedBeforeRemoval);
});
