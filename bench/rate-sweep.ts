// The open-loop rate sweep: latency (p50, p99, p99.9, counted from each task's
// intended send time) against the offered rate, for each path, from the compiled
// binaries, beside its NATS JetStream counterpart (bench/peers/jetstream, the
// same open loop: the same schedule, the same warm-up, latency from the same
// intended send time). Every cluster, ours and theirs, stays up for the whole
// sweep and the runs are alternated (round by round: at every rate each path
// and then its counterpart, the order reversed in the next round, rates up in
// one round and down in the next), so a busy minute on the shared machine lands
// on all of them. Writes results/rate-sweep.csv and one chart per path,
// results/rate-sweep-<path>.svg, ours solid and JetStream dashed. Needs `bun run
// build`; bench/peers/jetstream/run.sh installs its client and nats-server.
//
//   bun bench/rate-sweep.ts [--paths single,pair,durable,durable-interval] [--rates 2000,5000,...] [--runs 3] [--duration-s 3] [--warmup-s 1] [--skip-jetstream] [--out results]
//
// Paths: single (client -> coordinator -> worker) and pair (client -> router ->
// primary + backup -> worker), both against JetStream memory on one node;
// durable (the pair with --data-dir) and durable-interval (the same with the
// log fsynced every 100 ms) against a file stream of 3 replicas on 3 nodes
// (the pairing of COUNTERPART in bench/compare-report.ts).

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Cluster, freePort, parseReport, waitFor } from "../test/e2e/harness.ts";
import { JetStreamPeer, type JetStreamMode } from "./rate-sweep-peer.ts";
import { DURABLE_FSYNC_INTERVAL_MS } from "./compare-report.ts";
import { lineChartSvg, type ChartSeries } from "./svg-chart.ts";

const { values } = parseArgs({
  options: {
    paths: { type: "string", default: "single,pair,durable" },
    rates: { type: "string", default: "2000,5000,10000,20000,40000,60000" },
    runs: { type: "string", default: "3" },
    "duration-s": { type: "string", default: "3" },
    "warmup-s": { type: "string", default: "1" },
    threads: { type: "string", default: "2" },
    "skip-jetstream": { type: "boolean", default: false },
    out: { type: "string", default: "results" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("usage: bun bench/rate-sweep.ts [--paths single,pair,durable,durable-interval] [--rates a,b,c] [--runs N] [--duration-s S] [--warmup-s S] [--threads N] [--skip-jetstream] [--out DIR]");
  process.exit(0);
}

const PATH_NAMES: Record<string, string> = {
  single: "one coordinator, direct",
  pair: "primary + backup via router",
  durable: "primary + backup via router, --data-dir",
  "durable-interval": `primary + backup via router, --data-dir --fsync-interval-ms ${DURABLE_FSYNC_INTERVAL_MS}`,
};
/** The JetStream set-up each path is drawn against, named as its rows in the CSV. */
const COUNTERPART: Record<string, JetStreamMode> = { single: "memory", pair: "memory", durable: "r3", "durable-interval": "r3" };
const PEER_NAMES: Record<JetStreamMode, string> = { memory: "JetStream memory, 1 node", file: "JetStream file, 1 node", r3: "JetStream file R3, 3 nodes" };
const peerKey = (mode: JetStreamMode) => `jetstream-${mode}`;
const rates = values.rates!.split(",").map(Number);
const durationS = Number(values["duration-s"]);
const warmupS = Number(values["warmup-s"]);
const CLIENT_GRACE_MS = 30_000;

interface Sample {
  achieved: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  failed: number;
}

const cluster = new Cluster();

/** Starts one path's cluster; resolves with the port its client talks to. */
async function startPath(name: string): Promise<number> {
  const threads = ["-w", values.threads!];
  let port: number;
  let backups = 0;
  if (name === "single") {
    const c = await cluster.coordinator();
    cluster.worker([c.port], threads);
    port = c.port;
  } else if (name === "pair" || name === "durable" || name === "durable-interval") {
    // Each replica its own data directory.
    const durable = (): string[] => {
      if (name === "pair") return [];
      const dir = ["--data-dir", mkdtempSync(join(tmpdir(), "rate-sweep-wal-"))];
      return name === "durable" ? dir : [...dir, "--fsync-interval-ms", String(DURABLE_FSYNC_INTERVAL_MS)];
    };
    const nodePorts = [freePort(), freePort()];
    const nodes = await Promise.all(nodePorts.map((p) => cluster.replica(p, nodePorts, durable())));
    cluster.worker(nodes.map((n) => n.port), threads);
    port = (await cluster.router(nodes.map((n) => n.port))).port;
    backups = 1;
  } else {
    throw new Error(`unknown path ${name}: single, pair, durable or durable-interval`);
  }
  await waitFor("a primary with its worker (and backups in sync)", async () => {
    const primary = (await cluster.stats(port)).coordinators.find((c) => c.stats?.primary)?.stats;
    return primary && primary.workers.length === 1 && primary.replication.backupsInSync === backups ? true : undefined;
  });
  return port;
}

const sample = (report: Record<string, any>): Sample => {
  const l = report.latencyMs;
  return { achieved: report.throughput, p50: l.p50, p99: l.p99, p999: l.p999, max: l.max, failed: report.failed };
};

async function run(port: number, rate: number): Promise<Sample> {
  const args = ["-p", String(port), "-t", "noop", "--rate", String(rate), "--duration-s", String(durationS), "--warmup-s", String(warmupS), "--json"];
  return sample(parseReport(await cluster.client(args, (durationS + warmupS) * 1000 + CLIENT_GRACE_MS)));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** What one system ran at one rate: the median of each figure over its runs, failures summed. */
interface Row extends Sample {
  rate: number;
}

function rowsOf(samples: Map<string, Sample[]>, system: string): Row[] {
  return rates.map((rate) => {
    const s = samples.get(`${system}@${rate}`)!;
    const m = (f: (x: Sample) => number) => median(s.map(f));
    return { rate, achieved: m((x) => x.achieved), p50: m((x) => x.p50), p99: m((x) => x.p99), p999: m((x) => x.p999), max: m((x) => x.max), failed: s.reduce((n, x) => n + x.failed, 0) };
  });
}

/** p50 / p99 / p99.9 on the left axis and the achieved rate on the right, for one system; dashed for theirs. */
function chartSeries(label: string, rows: Row[], dashed: boolean): ChartSeries[] {
  const colors = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c"];
  const figures: Array<[string, (r: Row) => number, "left" | "right"]> = [["p50", (r) => r.p50, "left"], ["p99", (r) => r.p99, "left"], ["p99.9", (r) => r.p999, "left"], ["achieved", (r) => r.achieved, "right"]];
  return figures.map(([name, pick, axis], i) => ({ name: `${label} ${name}`, values: rows.map(pick), axis, color: colors[i], dashed }));
}

const peers = new Map<JetStreamMode, JetStreamPeer>();

try {
  const names = values.paths!.split(",");
  const ports = new Map<string, number>();
  for (const name of names) ports.set(name, await startPath(name));
  if (!values["skip-jetstream"]) {
    for (const name of names) {
      const mode = COUNTERPART[name]!;
      if (!peers.has(mode)) peers.set(mode, await JetStreamPeer.start(mode, durationS, warmupS));
    }
  }
  // Each path, then its counterpart when no path before it had that one: single, JetStream memory, pair, durable, JetStream R3.
  const order: Array<{ key: string; run: (rate: number) => Promise<Sample> }> = [];
  for (const name of names) {
    order.push({ key: name, run: (rate) => run(ports.get(name)!, rate) });
    const peer = peers.get(COUNTERPART[name]!);
    if (peer !== undefined && !order.some((o) => o.key === peerKey(peer.mode))) order.push({ key: peerKey(peer.mode), run: async (rate) => sample(await peer.run(rate)) });
  }
  const samples = new Map<string, Sample[]>();
  const key = (system: string, rate: number) => `${system}@${rate}`;
  const load = [loadavg()[0]!];
  const started = performance.now();
  for (let round = 0; round < Number(values.runs); round++) {
    // Up in one round, down in the next: a run right after a heavier one inherits its
    // collector's work (the 2,000/s run after a 40,000/s one), and the median evens that out.
    // The order of the systems at a rate flips too, so neither side always runs right after the other.
    for (const rate of round % 2 === 0 ? rates : [...rates].reverse()) {
      for (const system of round % 2 === 0 ? order : [...order].reverse()) {
        const k = key(system.key, rate);
        samples.set(k, [...(samples.get(k) ?? []), await system.run(rate)]);
      }
    }
    load.push(loadavg()[0]!);
  }
  const out = resolve(import.meta.dir, "..", values.out!);
  mkdirSync(out, { recursive: true });
  const csv = ["path,offered,achieved,p50,p99,p999,max,failed"];
  console.log(`open loop, no-op tasks, ${durationS} s measured after ${warmupS} s warm-up, medians of ${values.runs} alternated runs, ${Math.round((performance.now() - started) / 1000)} s; load average (1 min) ${load.map((l) => l.toFixed(1)).join(" -> ")}`);
  for (const peer of peers.values()) if (peer.info !== undefined) console.log(peer.info);
  console.log("path               offered/s  achieved/s  p50 ms  p99 ms  p99.9 ms  max ms  failed");
  const rows = new Map(order.map((system) => [system.key, rowsOf(samples, system.key)]));
  for (const [system, systemRows] of rows) {
    for (const r of systemRows) {
      csv.push([system, r.rate, r.achieved, r.p50, r.p99, r.p999, r.max, r.failed].join(","));
      console.log(`${system.padEnd(17)} ${String(r.rate).padStart(10)} ${String(r.achieved).padStart(11)} ${r.p50.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(7)} ${r.p999.toFixed(2).padStart(9)} ${r.max.toFixed(1).padStart(7)} ${String(r.failed).padStart(7)}`);
    }
  }
  for (const name of names) {
    const mode = COUNTERPART[name]!;
    const theirs = rows.get(peerKey(mode));
    writeFileSync(join(out, `rate-sweep-${name}.svg`), lineChartSvg({
      title: `Latency against offered load: ${PATH_NAMES[name]}${theirs === undefined ? "" : ` vs ${PEER_NAMES[mode]}`}`,
      subtitle: `open loop, no-op tasks, latency from the intended send time; ${durationS} s after ${warmupS} s warm-up, medians of ${values.runs} alternated runs${theirs === undefined ? "" : "; ours solid, JetStream dashed"}`,
      xLabel: "offered tasks/s (log scale)",
      leftLabel: "latency ms",
      rightLabel: "achieved tasks/s",
      xScale: "log",
      x: rates,
      series: [...chartSeries("ours", rows.get(name)!, false), ...(theirs === undefined ? [] : chartSeries("JetStream", theirs, true))],
      // Wide enough for the legend's four items a row: ours in one, JetStream's in the next.
      width: 1200,
      height: 540,
    }));
  }
  writeFileSync(join(out, "rate-sweep.csv"), `${csv.join("\n")}\n`);
} finally {
  await Promise.all([...peers.values()].map((p) => p.stop()));
  await cluster.stopAll();
}
