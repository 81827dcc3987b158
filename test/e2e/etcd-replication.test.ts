// An etcd-led replica group (coordinator --etcd) from the compiled binaries,
// against a real etcd on loopback: three coordinators of shard 0, a router and a
// worker that find them through etcd, and the client binary. Crashes, restarts in
// the wrong order, restarts without data and graceful stops must lose no
// acknowledged task and must never let a node lead that may lack one.

import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EtcdClient } from "../../src/net/etcd-client.ts";
import { isrKey, leaderKey, parseMember, shardPrefix, type IsrRecord } from "../../src/net/etcd-keys.ts";
import type { CoordinatorStats } from "../../src/protocol/messages.ts";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { etcdAvailable, startEtcd, type EtcdServer } from "../support/etcd-server.ts";
import { Cluster, holdsFor, parseReport, waitFor, type Started } from "./harness.ts";

if (!etcdAvailable()) console.warn("SKIP etcd replication e2e: no etcd binary (Debian: apt-get install etcd-server)");

const TASKS = 20_000;
const NAMES = ["c1", "c2", "c3"];
/** Keyed tasks acknowledged in each phase of the restart-order test. */
const KEYED_TASKS = 200;
/** How long a node that must not lead is watched not leading (the brief's bound: 3 s). */
const MUST_NOT_LEAD_MS = 3_000;
/** Failover after a crash waits for the dead primary's lease; on a loaded 2-core machine allow a few TTLs. */
const FAILOVER_DEADLINE_MS = 20_000;
/** The graceful-stop test's lease: long, so that a handover "well under the TTL" is told apart from an expiry. */
const LONG_LEASE_TTL_MS = 5_000;
/** A 20,000-task run reaches a given fraction well within this, even on a loaded 2-core machine. */
const RUN_PROGRESS_DEADLINE_MS = 60_000;
/** A node that has not answered a stats request in this long counts as not answering. */
const STATS_TIMEOUT_MS = 2_000;
/** Bytes of each process's output shown when a test fails. */
const OUTPUT_TAIL_CHARS = 4_000;

let etcd: EtcdServer | undefined;
let kv: EtcdClient | undefined;
let cluster: Cluster | undefined;
let dataDirs: string[] = [];
let groups = 0;
/** The running test's group, for the failure report. */
let current: Group | undefined;

beforeAll(async () => {
  if (!etcdAvailable()) return;
  etcd = await startEtcd();
  kv = new EtcdClient([etcd.endpoint]);
});
afterEach(async () => {
  current = undefined;
  await cluster?.stopAll();
  await Promise.all(dataDirs.map((d) => rm(d, { recursive: true, force: true })));
  dataDirs = [];
});
afterAll(async () => {
  kv?.close();
  await etcd?.stop();
});

interface Node {
  name: string;
  /** Flags it was started with, so a restart is the same node (same --data-dir). */
  flags: string[];
  started: Started;
  address: string;
}

/** One replica group: each test has its own key prefix, so they share one etcd without meeting. */
interface Group {
  prefix: string;
  nodes: Node[];
  routerPort: number;
  router: Started;
  worker: Omit<Started, "port">;
}

const etcdFlags = (prefix: string) => ["--etcd", etcd!.endpoint, "--etcd-prefix", prefix];

async function startNode(prefix: string, name: string, flags: string[]): Promise<Node> {
  // -p 0: the harness waits for the "listening on host:port" line and takes the port from it.
  const started = await cluster!.server("coordinator", ["--shard", "0", "--node-id", name, ...etcdFlags(prefix), "--log-level", "info", ...flags]);
  expect(started.port).toBeGreaterThan(0);
  return { name, flags, started, address: `127.0.0.1:${started.port}` };
}

/** The same node again (same name and flags, so the same --data-dir when it has one), on a new port. */
async function restart(g: Group, node: Node): Promise<Node> {
  const again = await startNode(g.prefix, node.name, node.flags);
  g.nodes[g.nodes.indexOf(node)] = again;
  return again;
}

/** Three coordinators, a router and a worker (2 threads), all of them finding each other in etcd. */
async function replicaGroup(options: { dataDirs?: boolean; flags?: string[] } = {}): Promise<Group> {
  cluster = new Cluster();
  const prefix = `/e2e-replication-${process.pid}-${++groups}`;
  const nodes = await Promise.all(NAMES.map(async (name) => {
    const flags = [...(options.flags ?? [])];
    if (options.dataDirs) {
      const dir = await mkdtemp(join(tmpdir(), `etcd-replication-${name}-`));
      dataDirs.push(dir);
      flags.push("--data-dir", dir);
    }
    return startNode(prefix, name, flags);
  }));
  const router = await cluster.server("router", [...etcdFlags(prefix), "--log-level", "warn"]);
  const worker = cluster.spawn("worker", [...etcdFlags(prefix), "-w", "2", "--log-level", "warn"]);
  current = { prefix, nodes, routerPort: router.port, router, worker };
  return current;
}

/** A node's own stats, asked of it directly; undefined when it does not answer (within STATS_TIMEOUT_MS: it may be paused). */
async function statsOf(node: Node): Promise<CoordinatorStats | undefined> {
  const timeout = Bun.sleep(STATS_TIMEOUT_MS).then(() => undefined);
  const asked = cluster!.stats(node.started.port).then((s) => s.coordinators[0]?.stats, () => undefined);
  return Promise.race([asked, timeout]);
}

/** Waits, through the router, for exactly one primary with `backups` backups in sync and the worker joined. */
async function primaryInSync(g: Group, backups: number, timeoutMs = FAILOVER_DEADLINE_MS): Promise<{ node: Node; stats: CoordinatorStats }> {
  return waitFor(`one primary with ${backups} backups in sync and the worker`, async () => {
    const stats = await cluster!.stats(g.routerPort);
    const primaries = stats.coordinators.filter((c) => c.reachable && c.stats?.primary);
    const p = primaries[0];
    if (primaries.length !== 1 || p?.stats?.replication.backupsInSync !== backups || p.stats.workers.length !== 1) return undefined;
    const node = g.nodes.find((n) => n.address === p.address);
    return node && { node, stats: p.stats };
  }, timeoutMs);
}

/** Stats of the nodes in `among` that call themselves primary. */
async function primariesAmong(among: Node[]): Promise<Array<{ node: Node; stats: CoordinatorStats }>> {
  const all = await Promise.all(among.map(async (node) => ({ node, stats: await statsOf(node) })));
  return all.filter((s): s is { node: Node; stats: CoordinatorStats } => s.stats?.primary === true);
}

/** kill -9, and wait until it is gone. */
async function kill(node: Node): Promise<number> {
  node.started.proc.kill("SIGKILL");
  return node.started.proc.exited;
}

async function isrMembers(g: Group): Promise<string[]> {
  const { kv: isr } = await kv!.get(isrKey(g.prefix, 0));
  return isr === undefined ? [] : (JSON.parse(isr.value) as IsrRecord).members;
}

async function leaderAbsent(g: Group): Promise<boolean> {
  return (await kv!.get(leaderKey(g.prefix, 0))).kv === undefined;
}

/** The replica id a node registered in etcd under its address (undefined until it has joined). */
async function replicaIdOf(g: Group, node: Node): Promise<string | undefined> {
  const { kvs } = await kv!.getPrefix(`${shardPrefix(g.prefix, 0)}members/`);
  return kvs.map((m) => parseMember(m.key, m.value)).find((m) => m?.address === node.address)?.replicaId;
}

/** A node kept from leading says so in its stats and its log. */
async function saysItWaits(node: Node): Promise<void> {
  const NOT_IN_ISR = /not in the in-sync replicas/;
  await waitFor(`${node.name} to say it is not in the ISR, in its stats and its log`, async () => {
    const s = await statsOf(node);
    return s?.replication.role === "candidate" && NOT_IN_ISR.test(s.replication.notLeading ?? "") && NOT_IN_ISR.test(node.started.output()) ? true : undefined;
  });
}

/** Submits `count` noop tasks under idempotency keys `<phase>-<i>` and records the id each was acknowledged with. */
async function submitKeyed(client: SchedulerClient, phase: string, count: number, acknowledged: Map<string, number>): Promise<void> {
  const keys = Array.from({ length: count }, (_, i) => `${phase}-${i}`);
  const ids = await Promise.all(keys.map((key) => client.submit("noop", undefined, { idempotencyKey: key })));
  keys.forEach((key, i) => acknowledged.set(key, ids[i]!));
}

/** The client binary's 20,000-task mixed run through the router, in the background. */
function mixedRun(g: Group) {
  return cluster!.client(["-p", String(g.routerPort), "-n", String(TASKS), "-c", "64", "-t", "mixed", "--json"]);
}

/** A finished run completed every task, and the primary's record holds each exactly once. */
function expectEveryTaskOnce(run: Awaited<ReturnType<typeof mixedRun>>, primary: CoordinatorStats) {
  const report = parseReport(run);
  expect(report.completed).toBe(TASKS);
  expect(report.failed).toBe(0);
  expect(run.code).toBe(0);
  // Retries under idempotency keys made no duplicates, and nothing acknowledged was lost.
  expect(primary.submitted).toBe(TASKS);
  expect(primary.completed).toBe(TASKS);
}

/** Runs a test body; when it fails, prints what every process of its group said before rethrowing. */
function explained(body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body();
    } catch (err) {
      const g = current;
      if (g !== undefined) {
        const tail = (text: string) => text.slice(-OUTPUT_TAIL_CHARS);
        for (const n of g.nodes) {
          const stats = await statsOf(n);
          console.error(`--- ${n.name} (${n.address}) ${stats ? JSON.stringify({ epoch: stats.epoch, ...stats.replication }) : "(no stats)"} ---\n${tail(n.started.output())}`);
        }
        console.error(`--- router ---\n${tail(g.router.output())}\n--- worker ---\n${tail(g.worker.output())}`);
        console.error(`--- etcd ${g.prefix} ---\n${JSON.stringify((await kv!.getPrefix(g.prefix).catch(() => ({ kvs: [] }))).kvs.map((k) => [k.key, k.value]))}`);
      }
      throw err;
    }
  };
}

test.skipIf(!etcdAvailable())("a replica group forms (one primary, two backups in sync) and runs 20,000 tasks", explained(async () => {
  const g = await replicaGroup();
  const { node: primary, stats } = await primaryInSync(g, 2);
  const backups = g.nodes.filter((n) => n !== primary);
  for (const b of backups) {
    const s = (await statsOf(b))!;
    expect(s.replication.role).toBe("backup");
    expect(s.replication.following).toBe(primary.address);
    expect(s.epoch).toBe(stats.epoch);
  }
  expect(await isrMembers(g)).toHaveLength(3);
  expect(stats.replication.isr).toHaveLength(3);

  const run = await mixedRun(g);
  const after = (await statsOf(primary))!;
  expectEveryTaskOnce(run, after);
  expect(after.replication.backupsInSync).toBe(2);
  // Every acknowledgement waited for both backups, so both hold the same record.
  await waitFor("both backups to have applied every task", async () => {
    const s = await Promise.all(backups.map(statsOf));
    return s.every((b) => b?.completed === TASKS && b.submitted === TASKS) ? true : undefined;
  });
}));

test.skipIf(!etcdAvailable())("kill -9 the primary mid-run: a backup takes over and every task completes exactly once", explained(async () => {
  const g = await replicaGroup();
  const { node: primary, stats: before } = await primaryInSync(g, 2);
  const run = mixedRun(g);
  await waitFor("half the run", async () => ((await statsOf(primary))!.completed >= TASKS / 2 ? true : undefined), RUN_PROGRESS_DEADLINE_MS);
  await kill(primary);
  const result = await run;
  const survivors = g.nodes.filter((n) => n !== primary);
  const [next] = await waitFor("a new primary", async () => {
    const p = await primariesAmong(survivors);
    return p.length === 1 ? p : undefined;
  });
  expect(next!.stats.epoch).toBeGreaterThan(before.epoch);
  expectEveryTaskOnce(result, next!.stats);
}));

test.skipIf(!etcdAvailable())("a backup that missed acknowledged tasks waits out of the ISR; the old primary comes back with every task", explained(async () => {
  const g = await replicaGroup({ dataDirs: true });
  const { node: primary } = await primaryInSync(g, 2);
  const [stale, other] = g.nodes.filter((n) => n !== primary) as [Node, Node];
  const staleId = (await replicaIdOf(g, stale))!;
  const acknowledged = new Map<string, number>();
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: g.routerPort });
  try {
    await submitKeyed(client, "all-three", KEYED_TASKS, acknowledged);
    await kill(stale);
    // Acknowledged only once the primary has taken the dead backup out of the ISR in etcd.
    await submitKeyed(client, "without-stale", KEYED_TASKS, acknowledged);
  } finally {
    client.close();
  }
  const isr = await isrMembers(g);
  expect(isr).toHaveLength(2);
  expect(isr).not.toContain(staleId);

  // Both holders of the last tasks die at once; the stale backup is the first to come back.
  await Promise.all([kill(primary), kill(other)]);
  await waitFor("the dead primary's leader key to expire with its lease", async () => ((await leaderAbsent(g)) ? true : undefined));
  const restarted = await restart(g, stale);
  expect(await waitFor("the restarted backup to rejoin etcd", () => replicaIdOf(g, restarted))).toBe(staleId);
  await saysItWaits(restarted);
  // Proving a non-event: for MUST_NOT_LEAD_MS it neither calls itself primary nor takes the leader key.
  await holdsFor("the stale backup staying out of the lead", async () => (await statsOf(restarted))?.primary === false && (await leaderAbsent(g)), MUST_NOT_LEAD_MS);

  const oldPrimary = await restart(g, primary);
  await waitFor("the old primary to lead again", async () => ((await statsOf(oldPrimary))?.primary ? true : undefined), FAILOVER_DEADLINE_MS);
  // The stale one catches up from it and is back in the ISR (the third, still down, is dropped from it).
  await primaryInSync(g, 1);
  await waitFor("the stale backup back in the ISR", async () => ((await isrMembers(g)).includes(staleId) ? true : undefined));

  const check = await SchedulerClient.connect({ host: "127.0.0.1", port: g.routerPort });
  try {
    for (const [key, taskId] of acknowledged) {
      const info = await waitFor(`task ${taskId} (${key}) to be known`, () => check.task(taskId));
      expect(info.taskId).toBe(taskId);
      expect(["queued", "leased", "completed"]).toContain(info.state);
      // A resubmission under the same key finds the same task: the key index survived too.
      expect(await check.submit("noop", undefined, { idempotencyKey: key })).toBe(taskId);
    }
  } finally {
    check.close();
  }
  expect((await statsOf(oldPrimary))!.submitted).toBe(2 * KEYED_TASKS);
}));

test.skipIf(!etcdAvailable())("a node restarted without --data-dir is a new replica: no candidate until it has synced, then back in the ISR", explained(async () => {
  const g = await replicaGroup();
  const { node: primary } = await primaryInSync(g, 2);
  const [wiped, other] = g.nodes.filter((n) => n !== primary) as [Node, Node];
  const oldId = (await replicaIdOf(g, wiped))!;
  await kill(wiped);
  await primaryInSync(g, 1);
  await waitFor("the ISR without the killed backup", async () => ((await isrMembers(g)).includes(oldId) ? undefined : true));

  // The only ISR members pause (they keep their state); the leader key goes with the primary's lease.
  primary.started.proc.kill("SIGSTOP");
  other.started.proc.kill("SIGSTOP");
  await waitFor("the paused primary's leader key to expire", async () => ((await leaderAbsent(g)) ? true : undefined));
  const fresh = await restart(g, wiped);
  const newId = await waitFor("the restarted node to join etcd", () => replicaIdOf(g, fresh));
  expect(newId).not.toBe(oldId);
  await saysItWaits(fresh);
  // Proving a non-event: an empty node with a new id must neither lead over the paused members' tasks nor enter the ISR.
  await holdsFor("the fresh node staying out of the lead and the ISR", async () => (await statsOf(fresh))?.primary === false && (await leaderAbsent(g)) && !(await isrMembers(g)).includes(newId), MUST_NOT_LEAD_MS);

  primary.started.proc.kill("SIGCONT");
  other.started.proc.kill("SIGCONT");
  // A paused member leads again; the fresh node syncs from it and is added to the ISR.
  await primaryInSync(g, 2);
  const isr = await isrMembers(g);
  expect(isr).toContain(newId);
  expect(isr).not.toContain(oldId);
  expect((await statsOf(fresh))!.replication.role).toBe("backup");
}));

test.skipIf(!etcdAvailable())("SIGTERM of the primary hands over well under the lease TTL, and the run loses nothing", explained(async () => {
  const g = await replicaGroup({ flags: ["--etcd-lease-ttl-ms", String(LONG_LEASE_TTL_MS)] });
  const { node: primary, stats: before } = await primaryInSync(g, 2);
  const run = mixedRun(g);
  await waitFor("a quarter of the run", async () => ((await statsOf(primary))!.completed >= TASKS / 4 ? true : undefined), RUN_PROGRESS_DEADLINE_MS);
  const survivors = g.nodes.filter((n) => n !== primary);
  const stoppedAt = performance.now();
  primary.started.proc.kill("SIGTERM");
  const [next] = await waitFor("a new primary", async () => {
    const p = await primariesAmong(survivors);
    return p.length === 1 ? p : undefined;
  }, LONG_LEASE_TTL_MS);
  const handoverMs = performance.now() - stoppedAt;
  console.log(`handover after SIGTERM: ${Math.round(handoverMs)} ms (lease TTL ${LONG_LEASE_TTL_MS} ms)`);
  // The lease was revoked, not left to expire: the new primary is in well under the TTL.
  expect(handoverMs).toBeLessThan(LONG_LEASE_TTL_MS / 2);
  expect(next!.stats.epoch).toBeGreaterThan(before.epoch);
  expect(await primary.started.proc.exited).toBe(0);
  expect(primary.started.output()).not.toMatch(/could not revoke the lease/);
  const result = await run;
  expectEveryTaskOnce(result, (await statsOf(next!.node))!);
}));

test.skipIf(!etcdAvailable())("a primary that fenced and leads again goes on from its own log: what it acknowledges after survives a restart", explained(async () => {
  // Found in review: the re-elected primary numbered its log from where it last followed, and
  // on restart the write-ahead log skipped the new epoch's records as already applied.
  cluster = new Cluster();
  const prefix = `/e2e-replication-${process.pid}-${++groups}`;
  const dir = await mkdtemp(join(tmpdir(), "etcd-replication-solo-"));
  dataDirs.push(dir);
  let node = await startNode(prefix, "solo", ["--data-dir", dir]);
  const isPrimary = async () => ((await statsOf(node))?.replication.role === "primary" ? true : undefined);
  await waitFor("the single replica to lead", isPrimary);
  const acknowledged = new Map<string, number>();
  let client = await SchedulerClient.connect(node.address);
  await submitKeyed(client, "before", 5, acknowledged);
  node.started.proc.kill("SIGSTOP");
  await Bun.sleep(2_500); // past the 1 s lease: on SIGCONT it must fence, then win again
  node.started.proc.kill("SIGCONT");
  await waitFor("a fence and a second promotion", () => {
    const out = node.started.output();
    return /"fenced/.test(out) && (out.match(/"promoted to primary"/g) ?? []).length >= 2 ? true : undefined;
  });
  await waitFor("it to lead again", isPrimary);
  client.close();
  client = await SchedulerClient.connect(node.address);
  await submitKeyed(client, "after", 3, acknowledged);
  client.close();
  await kill(node);
  node = await restart({ prefix, nodes: [node], routerPort: 0, router: node.started, worker: node.started }, node);
  await waitFor("the restarted replica to lead", isPrimary);
  client = await SchedulerClient.connect(node.address);
  try {
    for (const [key, id] of acknowledged) {
      const info = await client.task(id).catch((err: Error) => ({ state: `lost: ${err.message}` }));
      expect({ key, state: info.state }).toEqual({ key, state: expect.stringMatching(/^(queued|leased|completed)$/) });
    }
  } finally {
    client.close();
  }
}));
