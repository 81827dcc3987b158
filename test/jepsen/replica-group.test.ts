// Jepsen-style faults against an etcd-led replica group of real coordinators (dist/), each in its
// own network namespace: kill -9, partitions (from the backups, from etcd, total), SIGSTOP,
// restarts in the wrong order, a minority etcd partition and a skewed clock. A keyed workload runs
// through the router the whole time, with probe clients on every coordinator; afterwards every
// acknowledged key and task is audited and the history checked: nothing acknowledged lost, no key
// with two task ids, never two acknowledging primaries (terms derived from the coordinators' logs
// and the signals sent: primary-intervals.ts). Each run prints one JEPSEN line with its facts.
// Randomness (the crash delay of the stall-then-crash case) comes from JEPSEN_SEED, printed.

import { appendFileSync } from "node:fs";
import { describe, expect, test } from "bun:test";
import { etcdAvailable } from "./etcd-cluster.ts";
import { namespacesAvailable } from "./netns.ts";
import { waitFor } from "./process.ts";
import { COORDINATORS, distMissing, faketimeMissing, LEASE_TTL_MS, ReplicaGroup, type CoordinatorName } from "./replica-group.ts";
import { analyzeRun, describeTerms } from "./run-history.ts";
import { Workload } from "./workload.ts";

const namespaces = namespacesAvailable();
const etcd = etcdAvailable();
const skipWhy = !namespaces.ok ? namespaces.why : !etcd.ok ? etcd.why : (distMissing() ?? "");
const SEED = Number(process.env.JEPSEN_SEED ?? Date.now() % 1_000_000_007);
/** Optional: a file each run appends its JEPSEN line to (JSON), for reports over many runs. */
const REPORT_FILE = process.env.JEPSEN_REPORT;
/** Bounds one scenario: set-up ~3 s, the workload ≤ 12 s, its drain, the audit and teardown. */
const SCENARIO_TIMEOUT_MS = 45_000;
/** A new primary this long after the old one is gone is too slow: the lease is LEASE_TTL_MS. */
const FAILOVER_MS_MAX = 5_000;
/** A leader cut from etcd must fence before its lease can have expired in etcd. */
const FENCE_MS_MAX = LEASE_TTL_MS;
const SKEW_MS = 2 * 3_600_000;

/** mulberry32: a small seeded PRNG (no global random source in tests). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const random = prng(SEED);

interface Ctx {
  group: ReplicaGroup;
  load: Workload;
  /** Facts for the report (failover times, who led, ...). */
  facts: Record<string, unknown>;
  t0: number;
  /** The run's JEPSEN line is out (a failure after it needs no second one). */
  reported?: boolean;
}

interface ScenarioOptions {
  loadMs: number;
  dataDirs?: boolean;
  skewMs?: Partial<Record<CoordinatorName, number>>;
}

/** Starts the group and the workload, runs `faults`, heals, audits and checks; prints the run's facts. */
async function scenario(name: string, options: ScenarioOptions, faults: (ctx: Ctx) => Promise<void>): Promise<void> {
  const group = await ReplicaGroup.start({ dataDirs: options.dataDirs ?? false });
  let ctx: Ctx | undefined;
  let verdict = "error";
  try {
    await group.startAll(options.skewMs);
    const t0 = Date.now();
    ctx = { group, load: Workload.start(group, name, options.loadMs), facts: {}, t0 };
    await ctx.load.waitAcks(20, t0, "20 acknowledgements before any fault", 10_000);
    await faults(ctx);
    await group.healAll();
    await ctx.load.finished();
    await waitFor("a primary after the faults", () => group.primaryByLog(), 10_000);
    verdict = await check(name, ctx);
  } catch (err) {
    if (!ctx?.reported) report(name, `error: ${(err as Error).message.split("\n")[0]}`, ctx, {});
    console.log(`JEPSEN ${name}: logs kept in ${group.keepLogs()} (seed ${SEED})`);
    throw err;
  } finally {
    if (process.env.JEPSEN_KEEP_LOGS && verdict === "clean") console.log(`JEPSEN ${name}: logs kept in ${group.keepLogs()}`);
    await group.destroy();
  }
}

/** The audit, the history check and the router's final view; reports, then fails on any violation. Returns the verdict. */
async function check(name: string, ctx: Ctx): Promise<string> {
  const { group, load, t0 } = ctx;
  const audit = await load.audit();
  const stats = audit.find((e) => e.ev === "stats");
  const roles = stats?.ev === "stats" ? stats.coordinators.filter((c) => c.reachable) : [];
  ctx.facts.finalRoles = roles.map((c) => `${c.nodeId}:${c.role}@${c.epoch}`).join(" ");
  const analysis = analyzeRun({ load: load.events, audit, lines: group.coordinatorLines(), faults: group.faults, until: Date.now(), t0 });
  const verdict = analysis.violations.length === 0 ? "clean" : "VIOLATIONS";
  const fences = group.coordinatorLines().filter((l) => l.event.startsWith("fenced")).map((l) => `${l.node}@+${l.at - t0}: ${String(l.fields.reason)}`);
  report(name, verdict, ctx, {
    violationCount: analysis.violations.length, fences, counts: analysis.counts, refusals: analysis.refusals,
    terms: describeTerms(analysis.terms, t0), notes: analysis.notes.slice(0, 20), violations: analysis.violations.slice(0, 20),
  });
  const listed = analysis.violations.map((v) => `- [${v.kind}] ${v.message}`).join("\n");
  expect(analysis.violations, `${analysis.violations.length} violation(s):\n${listed}\n(seed ${SEED})`).toEqual([]);
  // The router's view at the end: exactly one coordinator says primary, at the highest epoch any reports.
  expect(roles.filter((c) => c.primary).map((c) => c.nodeId), `final roles: ${ctx.facts.finalRoles}`).toHaveLength(1);
  expect(roles.find((c) => c.primary)?.epoch).toBe(Math.max(...roles.map((c) => c.epoch ?? 0)));
  return verdict;
}

function report(name: string, verdict: string, ctx: Ctx | undefined, extra: Record<string, unknown>): void {
  const steps = ctx ? ctx.group.steps.filter((s) => s.at >= ctx.t0).map((s) => `+${s.at - ctx.t0} ${s.what}`) : [];
  const line = { scenario: name, verdict, seed: SEED, facts: ctx?.facts ?? {}, steps, ...extra };
  console.log(`JEPSEN ${JSON.stringify(line)}`);
  if (REPORT_FILE) appendFileSync(REPORT_FILE, `${JSON.stringify(line)}\n`);
  if (ctx) ctx.reported = true;
}

const others = (node: CoordinatorName) => COORDINATORS.filter((c) => c !== node);

/** After a fault at `at` on the primary `old`: a new primary, its delay, and acknowledgements resuming under it. */
async function newPrimary(ctx: Ctx, old: CoordinatorName, at: number, label = "failoverMs"): Promise<CoordinatorName> {
  const promoted = await ctx.group.waitPromotion(at, `a primary other than ${old}`, old, FAILOVER_MS_MAX + 5_000).catch(async (err: Error) => {
    // Say who etcd thinks leads: a key naming a live node that never promoted itself is a stuck shard, not a slow one.
    const leases = COORDINATORS.map((n) => ctx.group.lines(n).findLast((l) => l.event === "joined etcd")).filter((l) => l !== undefined).map((l) => `${l.node}#${l.life} ${String(l.fields.replicaId)} lease ${String(l.fields.lease)}`);
    throw new Error(`${err.message}; ${await ctx.group.etcdShardState()}; last sessions: ${leases.join(", ")}`);
  });
  ctx.facts[label] = promoted.at - at;
  ctx.facts.newPrimary = promoted.node;
  expect(promoted.at - at, `${promoted.node} took over ${promoted.at - at} ms after the fault; at most ${FAILOVER_MS_MAX}`).toBeLessThanOrEqual(FAILOVER_MS_MAX);
  await ctx.load.waitAcks(10, promoted.at, `acknowledgements under ${promoted.node}`, 10_000);
  return promoted.node as CoordinatorName;
}

/** Waits until `node` follows the current primary again and has loaded its snapshot. */
async function rejoined(ctx: Ctx, node: CoordinatorName, since: number): Promise<void> {
  const synced = await ctx.group.waitLine(node, `${node} to load a primary's snapshot`, (l) => l.event === "snapshot applied", since, 10_000);
  ctx.facts[`${node}RejoinedMs`] = synced.at - since;
}

function promotionsSince(ctx: Ctx, since: number, nodes: readonly string[]): string[] {
  return ctx.group.coordinatorLines().filter((l) => l.at >= since && l.event === "promoted to primary" && nodes.includes(l.node)).map((l) => `${l.node}@+${l.at - ctx.t0}`);
}

describe.skipIf(skipWhy !== "")(skipWhy ? `replica group under faults (skipped: ${skipWhy})` : "replica group under faults", () => {
  test("1. kill -9 the primary under load: a new primary within seconds, nothing acknowledged lost", async () => {
    await scenario("kill-primary", { loadMs: 7_000 }, async (ctx) => {
      await Bun.sleep(1_000); // load before the fault, with the ISR whole
      const at = Date.now();
      ctx.group.kill("c1");
      await newPrimary(ctx, "c1", at);
    });
  }, SCENARIO_TIMEOUT_MS);

  test("2. primary cut from its backups: it shrinks the ISR and goes on; no backup takes over", async () => {
    await scenario("primary-cut-from-backups", { loadMs: 8_000 }, async (ctx) => {
      const at = Date.now();
      for (const b of others("c1")) await ctx.group.cut("c1", b);
      const shrunk = await ctx.group.waitIsr("c1", 1, at, 5_000);
      ctx.facts.isrShrinkMs = shrunk.at - at;
      await ctx.load.waitAcks(20, shrunk.at, "acknowledgements after the ISR shrank", 5_000);
      await Bun.sleep(2_500); // the partition lasts several leases: the backups must not campaign
      expect(promotionsSince(ctx, at, others("c1"))).toEqual([]);
      const healedAt = Date.now();
      await ctx.group.healAll();
      const whole = await ctx.group.waitIsr("c1", 3, healedAt, 10_000);
      ctx.facts.isrWholeAgainMs = whole.at - healedAt;
    });
  }, SCENARIO_TIMEOUT_MS);

  test("3. primary cut from etcd: it fences within the lease, a backup takes over, it rejoins as a backup", async () => {
    await scenario("primary-cut-from-etcd", { loadMs: 8_000 }, async (ctx) => {
      const at = Date.now();
      for (const e of ctx.group.etcd.members) await ctx.group.cut("c1", e);
      const fenced = await ctx.group.waitLine("c1", "c1 to fence itself", (l) => l.event.startsWith("fenced"), at, 5_000);
      ctx.facts.fenceMs = fenced.at - at;
      expect(fenced.at - at).toBeLessThanOrEqual(FENCE_MS_MAX);
      const primary = await newPrimary(ctx, "c1", at);
      await Bun.sleep(1_000);
      const healedAt = Date.now();
      await ctx.group.healAll();
      await rejoined(ctx, "c1", healedAt);
      await ctx.group.waitIsr(primary, 3, healedAt, 10_000);
      expect(promotionsSince(ctx, at, ["c1"])).toEqual([]);
    });
  }, SCENARIO_TIMEOUT_MS);

  test("4. primary isolated for 3 s, then healed", async () => {
    await scenario("primary-isolated", { loadMs: 8_000 }, async (ctx) => {
      const at = Date.now();
      await ctx.group.isolate("c1");
      const fenced = await ctx.group.waitLine("c1", "c1 to fence itself", (l) => l.event.startsWith("fenced"), at, 5_000);
      ctx.facts.fenceMs = fenced.at - at;
      const primary = await newPrimary(ctx, "c1", at);
      await Bun.sleep(Math.max(0, at + 3_000 - Date.now()));
      const healedAt = Date.now();
      await ctx.group.healAll();
      await rejoined(ctx, "c1", healedAt);
      await ctx.group.waitIsr(primary, 3, healedAt, 10_000);
    });
  }, SCENARIO_TIMEOUT_MS);

  test("5a. SIGSTOP the primary past its lease, SIGCONT: it acknowledges and dispatches nothing after", async () => {
    await scenario("primary-paused", { loadMs: 8_000 }, async (ctx) => {
      const at = Date.now();
      ctx.group.pause("c1");
      const primary = await newPrimary(ctx, "c1", at);
      await Bun.sleep(Math.max(0, at + 2_500 - Date.now()));
      const contAt = Date.now();
      ctx.group.resume("c1");
      const fenced = await ctx.group.waitLine("c1", "c1 to fence itself after SIGCONT", (l) => l.event.startsWith("fenced") || l.event === "stepping down", contAt, 5_000);
      ctx.facts.fenceAfterContMs = fenced.at - contAt;
      await rejoined(ctx, "c1", contAt);
      await ctx.group.waitIsr(primary, 3, contAt, 10_000);
      const refused = ctx.group.lines("worker").filter((l) => l.event === "assignment refused" && l.at >= contAt);
      ctx.facts.workerRefusedAssignsAfterCont = refused.reduce((n, l) => n + Number(l.fields.refusedSinceLastLog ?? 1), 0);
    });
  }, SCENARIO_TIMEOUT_MS);

  test("5b. stall, then crash: SIGSTOP 0.7 s, SIGCONT, kill -9 10-40 ms later: a primary appears", async () => {
    await scenario("primary-stalled-then-killed", { loadMs: 7_000 }, async (ctx) => {
      const delayMs = 10 + Math.floor(random() * 31);
      ctx.facts.killDelayMs = delayMs;
      const stoppedAt = Date.now();
      ctx.group.pause("c1");
      await Bun.sleep(700);
      ctx.group.resume("c1");
      await Bun.sleep(delayMs);
      const killedAt = Date.now();
      ctx.group.kill("c1");
      // c1 may have fenced (and revoked its lease) on SIGCONT, before the kill: a backup can lead before killedAt.
      const primary = await newPrimary(ctx, "c1", stoppedAt, "failoverFromStopMs");
      ctx.facts.failoverFromKillMs = (ctx.group.lines(primary).find((l) => l.at >= stoppedAt && l.event === "promoted to primary")?.at ?? NaN) - killedAt;
    });
  }, SCENARIO_TIMEOUT_MS);

  test("6. restarts in the wrong order with --data-dir: stale backups do not lead, the old primary does", async () => {
    await scenario("restarts-wrong-order", { loadMs: 12_000, dataDirs: true }, async (ctx) => {
      const { group, load, facts } = ctx;
      for (const [backup, size] of [["c2", 2], ["c3", 1]] as const) {
        const at = Date.now();
        group.kill(backup);
        const shrunk = await group.waitIsr("c1", size, at, 5_000);
        facts[`isrWithout${backup}Ms`] = shrunk.at - at;
        await load.waitAcks(20, shrunk.at, `acknowledgements after ${backup} left the ISR`, 5_000);
      }
      group.kill("c1");
      const staleAt = Date.now();
      group.startCoordinator("c2");
      group.startCoordinator("c3");
      // Not in the ISR: they may hold less than was acknowledged, so they must wait (asserting an absence takes a window).
      await group.waitLine("c3", "c3 to refuse to lead", (l) => l.event === "not leading", staleAt, 5_000);
      await Bun.sleep(Math.max(0, staleAt + 3_000 - Date.now()));
      expect(promotionsSince(ctx, staleAt, ["c2", "c3"])).toEqual([]);
      const restartAt = Date.now();
      group.startCoordinator("c1");
      const led = await group.waitPromotion(restartAt, "a primary after c1's restart", undefined, 10_000);
      facts.leaderAfterRestart = led.node;
      facts.leadAfterRestartMs = led.at - restartAt;
      expect(led.node).toBe("c1");
      await load.waitAcks(10, led.at, "acknowledgements under the restarted c1", 10_000);
      await group.waitIsr("c1", 3, restartAt, 10_000);
    });
  }, SCENARIO_TIMEOUT_MS);

  test("7. minority etcd partition (etcd1 cut from its peers, then from everyone): the group keeps acknowledging", async () => {
    await scenario("etcd-minority", { loadMs: 10_000 }, async (ctx) => {
      const { group, load, facts } = ctx;
      const phase = async (label: string, cutOff: () => Promise<void>) => {
        const at = Date.now();
        await cutOff();
        await Bun.sleep(3_500);
        // Acknowledgements in the last two seconds of the partition: the group works without etcd1.
        facts[`${label}AcksLast2s`] = load.acks(Date.now() - 2_000, "router").length;
        facts[`${label}Promotions`] = promotionsSince(ctx, at, COORDINATORS);
        facts[`${label}Fences`] = group.coordinatorLines().filter((l) => l.at >= at && l.event.startsWith("fenced")).map((l) => `${l.node}@+${l.at - ctx.t0}`);
        await group.healAll();
        expect(facts[`${label}AcksLast2s`] as number, `no acknowledgements late in the ${label} partition`).toBeGreaterThan(0);
      };
      await phase("peersOnly", async () => {
        await group.cut("etcd1", "etcd2");
        await group.cut("etcd1", "etcd3");
      });
      await phase("isolated", () => group.isolate("etcd1"));
    });
  }, SCENARIO_TIMEOUT_MS);

  const skewSkip = faketimeMissing();
  test.skipIf(skewSkip !== undefined)(`8. a backup's clock 2 h ahead (libfaketime), then the primary killed${skewSkip ? ` (skipped: ${skewSkip})` : ""}`, async () => {
    await scenario("clock-skew", { loadMs: 7_000, skewMs: { c3: SKEW_MS } }, async (ctx) => {
      const { group, facts } = ctx;
      // The skewed clock must really be skewed in the compiled binary: its raw timestamps run SKEW_MS ahead.
      const first = group.lines("c3")[0]!;
      facts.c3ClockAheadMs = first.at + SKEW_MS - (group.steps.find((s) => s.what.startsWith("start c3"))?.at ?? 0);
      expect(facts.c3ClockAheadMs as number).toBeGreaterThan(SKEW_MS - 60_000);
      const excluded = group.lines("c1").find((l) => l.event.startsWith("backup clock too far off"));
      facts.skewedBackupExcluded = excluded === undefined ? false : { offsetMs: excluded.fields.offsetMs, maxClockOffsetMs: excluded.fields.maxClockOffsetMs };
      facts.isrBeforeKill = group.lines("c1").findLast((l) => l.event === "in-sync replicas changed")?.fields.members;
      const at = Date.now();
      group.kill("c1");
      const primary = await newPrimary(ctx, "c1", at);
      await Bun.sleep(1_500);
      facts.isrAfter = group.lines(primary).findLast((l) => l.event === "in-sync replicas changed")?.fields.members;
      facts.c3NotLeading = group.lines("c3").filter((l) => l.event === "not leading").map((l) => String(l.fields.reason)).slice(0, 2);
      // --help: a replica further off than --max-clock-offset-ms "stays out of the in-sync replicas and refuses to lead".
      expect(primary, "the skewed c3 took over").not.toBe("c3");
    });
  }, SCENARIO_TIMEOUT_MS);
});
