// The open-loop rate sweep: latency (p50, p99, p99.9, counted from each task's
// intended send time) against the offered rate, for each path, from the compiled
// binaries. Every path's cluster stays up for the whole sweep and the runs are
// alternated (round by round: every rate on every path, rates up in one round and
// down in the next), so a busy minute on the shared machine lands on all of them. Writes results/rate-sweep.csv and one chart
// per path, results/rate-sweep-<path>.svg. Needs `bun run build`.
//
//   bun bench/rate-sweep.ts [--paths single,pair] [--rates 2000,5000,...] [--runs 3] [--duration-s 3] [--warmup-s 1] [--out results]
//
// Paths: single (client -> coordinator -> worker), pair (client -> router ->
// primary + backup -> worker), durable (the pair with --data-dir).

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Cluster, freePort, parseReport, waitFor } from "../test/e2e/harness.ts";
import { lineChartSvg } from "./svg-chart.ts";

const { values } = parseArgs({
  options: {
    paths: { type: "string", default: "single,pair" },
    rates: { type: "string", default: "2000,5000,10000,20000,40000,60000" },
    runs: { type: "string", default: "3" },
    "duration-s": { type: "string", default: "3" },
    "warmup-s": { type: "string", default: "1" },
    threads: { type: "string", default: "2" },
    out: { type: "string", default: "results" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("usage: bun bench/rate-sweep.ts [--paths single,pair,durable] [--rates a,b,c] [--runs N] [--duration-s S] [--warmup-s S] [--threads N] [--out DIR]");
  process.exit(0);
}

const PATH_NAMES: Record<string, string> = {
  single: "one coordinator, direct",
  pair: "primary + backup via router",
  durable: "primary + backup via router, --data-dir",
};
const rates = values.rates!.split(",").map(Number);
const durationS = Number(values["duration-s"]);
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
  } else if (name === "pair" || name === "durable") {
    // Each replica its own data directory.
    const durable = (): string[] => (name === "durable" ? ["--data-dir", mkdtempSync(join(tmpdir(), "rate-sweep-wal-"))] : []);
    const nodePorts = [freePort(), freePort()];
    const nodes = await Promise.all(nodePorts.map((p) => cluster.replica(p, nodePorts, durable())));
    cluster.worker(nodes.map((n) => n.port), threads);
    port = (await cluster.router(nodes.map((n) => n.port))).port;
    backups = 1;
  } else {
    throw new Error(`unknown path ${name}: single, pair or durable`);
  }
  await waitFor("a primary with its worker (and backups in sync)", async () => {
    const primary = (await cluster.stats(port)).coordinators.find((c) => c.stats?.primary)?.stats;
    return primary && primary.workers.length === 1 && primary.replication.backupsInSync === backups ? true : undefined;
  });
  return port;
}

async function run(port: number, rate: number): Promise<Sample> {
  const args = ["-p", String(port), "-t", "noop", "--rate", String(rate), "--duration-s", String(durationS), "--warmup-s", values["warmup-s"]!, "--json"];
  const report = parseReport(await cluster.client(args, (durationS + Number(values["warmup-s"])) * 1000 + CLIENT_GRACE_MS));
  const l = report.latencyMs;
  return { achieved: report.throughput, p50: l.p50, p99: l.p99, p999: l.p999, max: l.max, failed: report.failed };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const names = values.paths!.split(",");
  const ports = new Map<string, number>();
  for (const name of names) ports.set(name, await startPath(name));
  const samples = new Map<string, Sample[]>();
  const key = (name: string, rate: number) => `${name}@${rate}`;
  const load = [loadavg()[0]!];
  for (let round = 0; round < Number(values.runs); round++) {
    // Up in one round, down in the next: a run right after a heavier one inherits its
    // collector's work (the 2,000/s run after a 40,000/s one), and the median evens that out.
    for (const rate of round % 2 === 0 ? rates : [...rates].reverse()) {
      for (const name of names) {
        const k = key(name, rate);
        samples.set(k, [...(samples.get(k) ?? []), await run(ports.get(name)!, rate)]);
      }
    }
    load.push(loadavg()[0]!);
  }
  const out = resolve(import.meta.dir, "..", values.out!);
  mkdirSync(out, { recursive: true });
  const csv = ["path,offered,achieved,p50,p99,p999,max,failed"];
  console.log(`open loop, no-op tasks, ${durationS} s measured after ${values["warmup-s"]} s warm-up, medians of ${values.runs} alternated runs; load average (1 min) ${load.map((l) => l.toFixed(1)).join(" -> ")}`);
  console.log("path      offered/s  achieved/s  p50 ms  p99 ms  p99.9 ms  max ms  failed");
  for (const name of names) {
    const rows = rates.map((rate) => {
      const s = samples.get(key(name, rate))!;
      const m = (f: (x: Sample) => number) => median(s.map(f));
      return { rate, achieved: m((x) => x.achieved), p50: m((x) => x.p50), p99: m((x) => x.p99), p999: m((x) => x.p999), max: m((x) => x.max), failed: s.reduce((n, x) => n + x.failed, 0) };
    });
    for (const r of rows) {
      csv.push([name, r.rate, r.achieved, r.p50, r.p99, r.p999, r.max, r.failed].join(","));
      console.log(`${name.padEnd(8)} ${String(r.rate).padStart(10)} ${String(r.achieved).padStart(11)} ${r.p50.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(7)} ${r.p999.toFixed(2).padStart(9)} ${r.max.toFixed(1).padStart(7)} ${String(r.failed).padStart(7)}`);
    }
    writeFileSync(join(out, `rate-sweep-${name}.svg`), lineChartSvg({
      title: `Latency against offered load: ${PATH_NAMES[name]}`,
      subtitle: `open loop, no-op tasks, latency from the intended send time; medians of ${values.runs} runs`,
      xLabel: "offered tasks/s (log scale)",
      leftLabel: "latency ms",
      rightLabel: "achieved tasks/s",
      xScale: "log",
      x: rows.map((r) => r.rate),
      series: [
        { name: "p50", values: rows.map((r) => r.p50), axis: "left" },
        { name: "p99", values: rows.map((r) => r.p99), axis: "left" },
        { name: "p99.9", values: rows.map((r) => r.p999), axis: "left" },
        { name: "achieved", values: rows.map((r) => r.achieved), axis: "right" },
      ],
      width: 900,
    }));
  }
  writeFileSync(join(out, "rate-sweep.csv"), `${csv.join("\n")}\n`);
} finally {
  await cluster.stopAll();
}
