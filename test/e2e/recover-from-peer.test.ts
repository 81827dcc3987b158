// A damaged write-ahead log, from the compiled binaries: a backup whose
// wal.log has one byte flipped mid-log refuses to start, saying which file,
// which offset and what to do; restarted with --recover-from-peer it sets the
// damaged files aside, rejoins from the primary's snapshot and, once the
// primary is killed, serves every acknowledged task itself. And replicas that
// set their data aside never lead from the empty state.

import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CoordinatorStats } from "../../src/protocol/messages.ts";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { retried, unknownTasks } from "./acknowledged.ts";
import { Cluster, freePort, holdsFor, waitFor, type Started } from "./harness.ts";

const dataRoot = mkdtempSync(join(tmpdir(), "recover-from-peer-"));
let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});
afterAll(() => rmSync(dataRoot, { recursive: true, force: true }));

/** Submission rounds, each awaited: every round is at least one record in the backup's log. */
const ROUNDS = 12;
const TASKS_PER_ROUND = 25;
/** The default failover timeout. */
const FAILOVER_MS = 400;
async function nodeStats(node: Started): Promise<CoordinatorStats> {
  return (await cluster.stats(node.port)).coordinators[0]!.stats!;
}

/** The primary and the backup of a pair, once the backup is in sync. */
async function inSync(nodes: Started[]): Promise<{ primary: Started; backup: Started }> {
  return waitFor("a primary with its backup in sync", async () => {
    const all = await Promise.all(nodes.map(nodeStats));
    const p = all.findIndex((s) => s.primary && s.replication.backupsInSync === 1);
    return p < 0 ? undefined : { primary: nodes[p]!, backup: nodes[1 - p]! };
  });
}

/** Where each record of a whole wal.log starts (format in src/coordinator/wal-records.ts). */
function recordStarts(log: Uint8Array): number[] {
  const view = new DataView(log.buffer, log.byteOffset, log.byteLength);
  const starts: number[] = [];
  for (let at = 0; at < log.length; at += 8 + view.getUint32(at, true)) starts.push(at);
  return starts;
}

test("a backup with a byte flipped mid-log refuses to start; with --recover-from-peer it rejoins, and nothing acknowledged is lost when the primary dies", async () => {
  cluster = new Cluster();
  const ports = [freePort(), freePort()];
  const dirOf = (port: number) => join(dataRoot, `pair-${port}`);
  const args = (port: number) => ["-p", String(port), "--peer", `127.0.0.1:${ports.find((p) => p !== port)}`, "--data-dir", dirOf(port)];
  const nodes = await Promise.all(ports.map((port) => cluster.replica(port, ports, ["--data-dir", dirOf(port)])));
  const { primary, backup } = await inSync(nodes);
  const router = await cluster.router(ports);
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  const acknowledged: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const keys = Array.from({ length: TASKS_PER_ROUND }, (_, i) => `r${round}-${i}`);
    acknowledged.push(...(await Promise.all(keys.map((key) => retried(() => client.submit("noop", undefined, { idempotencyKey: key }))))));
  }

  // Acknowledged means the backup logged it too: stop it and flip a byte in the middle of its log.
  backup.proc.kill("SIGTERM");
  await backup.proc.exited;
  const logPath = join(dirOf(backup.port), "wal.log");
  const log = new Uint8Array(readFileSync(logPath));
  const starts = recordStarts(log);
  const middle = Math.floor(log.length / 2);
  expect(middle).toBeLessThan(starts.at(-1)!); // not in the last record: nothing after it could be a torn tail
  const damagedRecord = starts.findLast((s) => s <= middle)!;
  log[middle]! ^= 0x10;
  writeFileSync(logPath, log);

  const refused = cluster.spawn("coordinator", [...args(backup.port), "--log-level", "warn"]);
  const exitCode = await waitFor("the damaged node to exit", () => refused.proc.exitCode ?? undefined, 10_000).catch((err) => `${(err as Error).message}; it logged:\n${refused.output()}`);
  expect(exitCode).toBe(1);
  const said = refused.output();
  expect(said).toContain('"event":"cannot start"');
  expect(said).toContain(`${logPath} at byte offset ${damagedRecord}: checksum mismatch`);
  expect(said).toContain("--recover-from-peer");
  expect(new Uint8Array(readFileSync(logPath))).toEqual(log); // refusing changed nothing

  const rejoined = await cluster.replica(backup.port, ports, ["--data-dir", dirOf(backup.port), "--recover-from-peer", "--log-level", "info"]);
  await waitFor("the rejoined node in sync with the same primary", async () => {
    const [p, r] = await Promise.all([nodeStats(primary), nodeStats(rejoined)]);
    return p.primary && p.replication.backupsInSync === 1 && !r.primary && r.replication.appliedIndex >= acknowledged.length ? true : undefined;
  }, 20_000);
  expect(rejoined.output()).toContain('"event":"snapshot applied"');
  expect(rejoined.output()).not.toContain('"event":"promoted to primary"');
  const setAside = readdirSync(dirOf(backup.port)).filter((f) => f.startsWith("set-aside-"));
  expect(setAside).toHaveLength(1);
  expect(new Uint8Array(readFileSync(join(dirOf(backup.port), setAside[0]!, "wal.log")))).toEqual(log);

  primary.proc.kill("SIGKILL");
  await primary.proc.exited;
  await waitFor("the rejoined node to take over", async () => ((await nodeStats(rejoined)).primary ? true : undefined), 20 * FAILOVER_MS);
  await waitFor("the router to see it", async () => ((await client.clusterStats()).coordinators.some((c) => c.stats?.primary) ? true : undefined));
  expect(await unknownTasks(client, acknowledged)).toEqual([]);
  cluster.worker(ports, ["-w", "4"]);
  const outcomes = await Promise.all(acknowledged.map((id) => retried(() => client.wait(id))));
  expect(outcomes.filter((o) => !o.ok)).toEqual([]);
  client.close();
}, 90_000);

test("replicas that both set their data aside never lead from the empty state", async () => {
  cluster = new Cluster();
  const ports = [freePort(), freePort()];
  const dirOf = (port: number) => join(dataRoot, `both-${port}`);
  const nodes = await Promise.all(ports.map((port) => cluster.replica(port, ports, ["--data-dir", dirOf(port)])));
  const { primary } = await inSync(nodes);
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: primary.port });
  await client.submit("noop", undefined, { idempotencyKey: "k" });
  client.close();
  await cluster.stopAll();

  const emptied = await Promise.all(ports.map((port) => cluster.replica(port, ports, ["--data-dir", dirOf(port), "--recover-from-peer", "--log-level", "info"])));
  await holdsFor("neither emptied replica leading", async () => (await Promise.all(emptied.map(nodeStats))).every((s) => !s.primary), 6 * FAILOVER_MS);
  for (const node of emptied) expect(node.output()).toContain("this node set its data aside (--recover-from-peer)");
}, 60_000);
