// Failover time of an etcd-led replica group, from the compiled binaries: three
// coordinators of shard 0 (--etcd), a router and a worker, against one etcd on
// loopback. Per trial a fresh group; then one fault on its primary:
//   kill  kill -9 of the primary;
//   cut   the primary alone loses etcd: each coordinator reaches etcd through its
//         own CutProxy (cut-proxy.ts), and the primary's is cut.
// A prober submits a keyed task through the router every PROBE_MS (the same key
// again until it is acknowledged, then the next). Failover time: from the fault
// to the first acknowledgement by the new primary, that is of an attempt sent
// after the primary died (kill) or fenced itself (cut: its log says when; until
// then it still acknowledges, rightly, on a lease it knows is live). The bench
// also checks the new primary was promoted only after the old one fenced.
//
//   bun bench/etcd-failover.ts [--trials 20] [--faults kill,cut] [--lease-ttl-ms 1000]
//       [--cut-mode reset|blackhole] [--out results/failover.csv]
//
// etcd runs with --heartbeat-interval 25 --election-timeout 250 (test/support/
// etcd-server.ts): etcd's smallest lease TTL derives from them, and with its
// defaults a 1 s lease is granted as 2 s. Timings use this host's clock, which
// the coordinators' log timestamps share.

import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { SchedulerClient } from "../src/sdk/client.ts";
import { startEtcd, type EtcdServer } from "../test/support/etcd-server.ts";
import { Cluster, waitFor, type Started } from "../test/e2e/harness.ts";
import { CUT_MODES, CutProxy, type CutMode } from "./cut-proxy.ts";

const FAULTS = ["kill", "cut"] as const;
type Fault = (typeof FAULTS)[number];
/** A new probe attempt (the same key until acknowledged) this often. */
const PROBE_MS = 10;
/** Attempts of one probe in flight at once, at most (the rest wait for one to settle). */
const PROBE_ATTEMPTS_IN_FLIGHT_MAX = 200;
/** A trial with no acknowledgement by a new primary this long after the fault fails. */
const TRIAL_TIMEOUT_MS = 30_000;
/** How long a group may take to form (three replicas in sync, the worker joined). */
const FORM_TIMEOUT_MS = 20_000;
const CSV_COLUMNS = ["fault", "trial", "failover_ms", "fenced_ms", "promoted_ms", "lease_ttl_ms", "cut_mode"] as const;

const { values } = parseArgs({
  options: {
    trials: { type: "string", default: "20" },
    faults: { type: "string", default: FAULTS.join(",") },
    "lease-ttl-ms": { type: "string", default: "1000" },
    "cut-mode": { type: "string", default: "reset" },
    out: { type: "string", default: "results/failover.csv" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(`bun bench/etcd-failover.ts [--trials 20] [--faults ${FAULTS.join(",")}] [--lease-ttl-ms 1000] [--cut-mode ${CUT_MODES.join("|")}] [--out results/failover.csv]`);
  process.exit(0);
}
const trials = Number(values.trials);
const leaseTtlMs = Number(values["lease-ttl-ms"]);
const cutMode = values["cut-mode"] as CutMode;
const faults = values.faults!.split(",") as Fault[];
if (!Number.isInteger(trials) || trials < 1) throw new Error(`--trials must be a positive integer, not ${values.trials}`);
if (!CUT_MODES.includes(cutMode)) throw new Error(`--cut-mode must be one of ${CUT_MODES.join(", ")}`);
for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`unknown fault ${f}; known: ${FAULTS.join(", ")}`);

interface Trial {
  fault: Fault;
  trial: number;
  /** Fault to the first acknowledgement by the new primary. */
  failoverMs: number;
  /** cut: fault to the old primary's "fenced" line (kill: empty). */
  fencedMs: number | undefined;
  /** Fault to the new primary's "promoted to primary" line. */
  promotedMs: number;
}

interface Replica {
  started: Started;
  proxy: CutProxy;
  address: string;
}

/** Wall-clock ms of the first log line of `event` at or after `since` (the coordinators log JSON lines with an ISO ts). */
function loggedAt(output: string, event: string, since: number): number | undefined {
  for (const line of output.split("\n")) {
    if (!line.includes(`"event":"${event}`)) continue;
    const ts = Date.parse(/"ts":"([^"]+)"/.exec(line)?.[1] ?? "");
    if (ts >= since) return ts;
  }
  return undefined;
}

/**
 * Keyed submits through the router from now until stop(): one key at a time, a new
 * attempt every PROBE_MS until one is acknowledged, then the next key. Records when
 * each acknowledged attempt was sent and when its acknowledgement came (wall clock).
 */
function startProber(client: SchedulerClient, tag: string) {
  const acks: Array<{ sentAt: number; ackAt: number }> = [];
  let stopped = false;
  let probe = 1;
  let inFlight = 0;
  const timer = setInterval(() => {
    if (stopped || inFlight >= PROBE_ATTEMPTS_IN_FLIGHT_MAX) return;
    const mine = probe;
    const sentAt = Date.now();
    inFlight++;
    client.submit("noop", undefined, { idempotencyKey: `${tag}-${mine}` }).then(
      () => {
        acks.push({ sentAt, ackAt: Date.now() });
        if (mine === probe) probe++;
      },
      () => undefined, // refused or lost: the next attempt retries the same key
    ).finally(() => inFlight--);
  }, PROBE_MS);
  return {
    acks,
    /** The first acknowledgement of an attempt sent after `t`. */
    firstAckOfAttemptAfter: (t: number) => acks.filter((a) => a.sentAt > t).reduce<number | undefined>((min, a) => (min === undefined || a.ackAt < min ? a.ackAt : min), undefined),
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}

async function runTrial(etcd: EtcdServer, fault: Fault, trial: number): Promise<Trial> {
  const cluster = new Cluster();
  const proxies: CutProxy[] = [];
  let client: SchedulerClient | undefined;
  let prober: ReturnType<typeof startProber> | undefined;
  const etcdUrl = new URL(etcd.endpoint);
  const prefix = `/bench-failover-${process.pid}-${fault}-${trial}`;
  try {
    const replicas: Replica[] = await Promise.all(["c1", "c2", "c3"].map(async (name) => {
      const proxy = new CutProxy({ host: etcdUrl.hostname, port: Number(etcdUrl.port) });
      proxies.push(proxy);
      const started = await cluster.server("coordinator", [
        "--shard", "0", "--node-id", name, "--etcd", proxy.endpoint, "--etcd-prefix", prefix,
        "--etcd-lease-ttl-ms", String(leaseTtlMs), "--log-level", "info",
      ]);
      return { started, proxy, address: `127.0.0.1:${started.port}` };
    }));
    const direct = ["--etcd", etcd.endpoint, "--etcd-prefix", prefix, "--log-level", "warn"];
    const router = await cluster.server("router", direct);
    cluster.spawn("worker", [...direct, "-w", "1"]);
    const primaryAddress = await waitFor("three replicas in sync and the worker", async () => {
      const stats = await cluster.stats(router.port);
      const p = stats.coordinators.find((c) => c.stats?.primary);
      return p?.stats?.replication.backupsInSync === 2 && p.stats.workers.length === 1 ? p.address : undefined;
    }, FORM_TIMEOUT_MS);
    const primary = replicas.find((r) => r.address === primaryAddress)!;
    const others = replicas.filter((r) => r !== primary);

    client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
    prober = startProber(client, prefix);
    await waitFor("the prober's first acknowledgement", () => (prober!.acks.length > 0 ? true : undefined));

    const faultAt = Date.now();
    if (fault === "kill") primary.started.proc.kill("SIGKILL");
    else primary.proxy.cut(cutMode);

    // The old primary acknowledges nothing sent after it died (kill) or fenced itself (cut): such acks are the new primary's.
    const fencedAt = fault === "cut"
      ? await waitFor("the old primary to fence itself", () => loggedAt(primary.started.output(), "fenced", faultAt), TRIAL_TIMEOUT_MS)
      : faultAt;
    const firstAck = await waitFor("an acknowledgement by the new primary", () => prober!.firstAckOfAttemptAfter(fencedAt), TRIAL_TIMEOUT_MS);
    const promotedAt = await waitFor("the new primary's promotion line", () => {
      const times = others.map((r) => loggedAt(r.started.output(), "promoted to primary", faultAt)).filter((t) => t !== undefined);
      return times.length > 0 ? Math.min(...times) : undefined;
    });
    if (promotedAt < fencedAt) throw new Error(`two primaries: a new one was promoted ${fencedAt - promotedAt} ms before the old one fenced itself`);
    return {
      fault, trial, failoverMs: firstAck - faultAt, fencedMs: fault === "cut" ? fencedAt - faultAt : undefined, promotedMs: promotedAt - faultAt,
    };
  } finally {
    prober?.stop();
    client?.close();
    await cluster.stopAll();
    for (const p of proxies) p.stop();
  }
}

/** Nearest-rank percentile (with 20 trials p99 is the largest). */
function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const loadAtStart = loadavg()[0]!;
const etcd = await startEtcd();
const results: Trial[] = [];
try {
  for (const fault of faults) {
    for (let trial = 1; trial <= trials; trial++) {
      const t = await runTrial(etcd, fault, trial);
      results.push(t);
      const fenced = t.fencedMs === undefined ? "" : `, old primary fenced after ${t.fencedMs} ms`;
      console.log(`${fault} trial ${trial}: failover ${t.failoverMs} ms (new primary promoted after ${t.promotedMs} ms${fenced})`);
    }
  }
} finally {
  await etcd.stop();
}

const out = resolve(import.meta.dir, "..", values.out!);
mkdirSync(dirname(out), { recursive: true });
const rows = results.map((t) => [t.fault, t.trial, t.failoverMs, t.fencedMs ?? "", t.promotedMs, leaseTtlMs, t.fault === "cut" ? cutMode : ""].join(","));
writeFileSync(out, `${[CSV_COLUMNS.join(","), ...rows].join("\n")}\n`);

console.log(`\nfailover time, ms (${trials} trials each; --etcd-lease-ttl-ms ${leaseTtlMs}; etcd --heartbeat-interval 25 --election-timeout 250; cut mode ${cutMode})`);
// A busy host stretches every step (lease renewals, etcd's expiry, the probe): say how busy it was.
console.log(`1-minute load average: ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end`);
console.log("fault  median  p99  max");
for (const fault of faults) {
  const xs = results.filter((t) => t.fault === fault).map((t) => t.failoverMs);
  console.log(`${fault.padEnd(5)}  ${String(percentile(xs, 50)).padStart(6)}  ${String(percentile(xs, 99)).padStart(4)}  ${String(Math.max(...xs)).padStart(4)}`);
}
console.log(`wrote ${values.out}`);
