// Benchmark sweeps from the compiled binaries (the seed's benchmark_*.sh): vary
// one thing (workers, shards, client concurrency, workload), start a fresh
// cluster per value behind a router, run the client --runs times, and write the
// medians to results/<sweep>.csv and a chart to results/<sweep>.svg.
//
//   bun bench/sweep.ts <workers|shards|clients|workload> [--runs 3] [--tasks N] [--deadline-s 30] [--values a,b,c]

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { Cluster, parseReport, type ClientRun } from "../test/e2e/harness.ts";
import { lineChartSvg, type XScale } from "./svg-chart.ts";

/** How long the harness waits past the client's own deadline before it kills the client. */
const KILL_GRACE_MS = 15_000;
const CSV_COLUMNS = ["sweep", "value", "throughput", "p50", "p95", "p99", "max", "completed", "failed"] as const;

interface SweepSpec {
  what: string;
  xLabel: string;
  xScale: XScale;
  values: string[];
  /** Closed-loop client concurrency (`-c`) unless the sweep varies it. */
  concurrency: number;
  /** Workload (`-t`) unless the sweep varies it. */
  type: string;
  /** Default tasks per run, chosen so one run takes ~1-3 s on the 2-core development machine. */
  tasks: (value: string) => number;
  /** Starts the cluster for one value; resolves with the port the client talks to (the router's). */
  start: (cluster: Cluster, value: string) => Promise<number>;
}

/** One coordinator, one worker process with `threads` executors, a router: the clients and workload sweeps. */
async function singleShard(cluster: Cluster, threads: number): Promise<number> {
  const coordinator = await cluster.coordinator(["--shard", "0"]);
  cluster.worker([coordinator.port], ["-w", String(threads)]);
  const router = await cluster.router([coordinator.port]);
  await cluster.workersJoined(router.port, 1);
  return router.port;
}

const WORKLOAD_TASKS: Record<string, number> = { noop: 100_000, cpu: 3_000, sleep: 50_000, mixed: 15_000, wordcount: 50_000 };

const SWEEPS: Record<string, SweepSpec> = {
  workers: {
    what: "worker processes (-w 1 each), one shard",
    xLabel: "worker processes (each -w 1)",
    xScale: "linear",
    values: ["1", "2", "4"],
    concurrency: 64,
    type: "mixed",
    tasks: () => 10_000,
    start: async (cluster, value) => {
      const coordinator = await cluster.coordinator(["--shard", "0"]);
      for (let i = 0; i < Number(value); i++) cluster.worker([coordinator.port], ["-w", "1"]);
      const router = await cluster.router([coordinator.port]);
      await cluster.workersJoined(router.port, Number(value));
      return router.port;
    },
  },
  shards: {
    what: "shards behind one router, one worker (-w 2) serving all",
    xLabel: "shards (coordinators)",
    xScale: "linear",
    values: ["1", "2", "3"],
    concurrency: 256,
    type: "noop",
    tasks: () => 200_000,
    start: async (cluster, value) => {
      const ports: number[] = [];
      for (let k = 0; k < Number(value); k++) ports.push((await cluster.coordinator(["--shard", String(k)])).port);
      cluster.worker(ports, ["-w", "2"]);
      const router = await cluster.router(ports);
      // One worker process is one connection per coordinator: n shards each see it once.
      await cluster.workersJoined(router.port, ports.length);
      return router.port;
    },
  },
  clients: {
    what: "client concurrency (-c), one shard, one worker (-w 2)",
    xLabel: "tasks in flight (client -c), log scale",
    xScale: "log",
    values: ["1", "8", "64", "256", "1024"],
    concurrency: 0,
    type: "noop",
    // One in flight is one round trip per task (~0.2 ms): fewer tasks keep that run as short as the others.
    tasks: (value) => (Number(value) <= 1 ? 10_000 : Number(value) <= 8 ? 50_000 : 200_000),
    start: (cluster) => singleShard(cluster, 2),
  },
  workload: {
    what: "workload type, one shard, one worker (-w 2)",
    xLabel: "workload (client -t)",
    xScale: "category",
    values: ["noop", "cpu", "sleep", "mixed", "wordcount"],
    concurrency: 64,
    type: "",
    tasks: (value) => WORKLOAD_TASKS[value] ?? 10_000,
    start: (cluster) => singleShard(cluster, 2),
  },
};

const HELP = `Usage: bun bench/sweep.ts <sweep> [options]

Sweeps (each value gets a fresh cluster: client -> router -> coordinator(s) -> worker(s)):
  workers    worker processes, each -w 1, one shard                  values 1,2,4          mixed, -c 64
  shards     coordinators behind one router, one worker -w 2         values 1,2,3          noop, -c 256
  clients    client concurrency -c, one shard, one worker -w 2       values 1,8,64,256,1024 noop
  workload   workload type -t, one shard, one worker -w 2            values noop,cpu,sleep,mixed,wordcount, -c 64

Options:
  --runs N          client runs per value; the table holds their medians (default 3)
  --tasks N         tasks per run (default per sweep and value, ~1-3 s per run on 2 cores)
  --deadline-s S    client --deadline-s per run; the harness kills a client ${KILL_GRACE_MS / 1000} s past it (default 30)
  --values a,b,c    the values to sweep (default above)
  --concurrency N   client -c for the sweeps that do not vary it (default above)
  --type T          client -t for the sweeps that do not vary it (default above)
  --out DIR         where <sweep>.csv and <sweep>.svg go (default results)
  --replot          measure nothing: redraw <sweep>.svg from <sweep>.csv (give --runs as measured)
  -h, --help        print this help

Needs the binaries: bun scripts/build.ts coordinator worker router client
`;

interface Options {
  runs: number;
  tasks?: number;
  deadlineS: number;
  values?: string[];
  concurrency?: number;
  type?: string;
  out: string;
  replot: boolean;
}

function positiveNumber(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

function parseCommandLine(argv: string[]): { sweep: string; options: Options } | undefined {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      runs: { type: "string" },
      tasks: { type: "string" },
      "deadline-s": { type: "string" },
      values: { type: "string" },
      concurrency: { type: "string" },
      type: { type: "string" },
      out: { type: "string" },
      replot: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return undefined;
  const sweep = positionals[0];
  if (sweep === undefined || !(sweep in SWEEPS) || positionals.length > 1) {
    throw new Error(`expected one sweep (${Object.keys(SWEEPS).join(", ")}), got ${JSON.stringify(positionals)}`);
  }
  return {
    sweep,
    options: {
      runs: Math.round(positiveNumber("runs", values.runs) ?? 3),
      tasks: positiveNumber("tasks", values.tasks),
      deadlineS: positiveNumber("deadline-s", values["deadline-s"]) ?? 30,
      values: values.values?.split(",").map((v) => v.trim()).filter((v) => v !== ""),
      concurrency: positiveNumber("concurrency", values.concurrency),
      type: values.type,
      out: values.out ?? resolve(import.meta.dir, "../results"),
      replot: values.replot ?? false,
    },
  };
}

interface RunResult {
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  completed: number;
  failed: number;
  /** Anything a reader should know: client errors, retries, deadline, exit status. */
  notes: string[];
}

/** One client run as numbers; a run that printed no JSON (killed, crashed) counts every task as failed. */
function summarize(run: ClientRun, tasks: number): RunResult {
  let r: Record<string, any>;
  try {
    r = parseReport(run);
  } catch {
    const tail = (run.stderr || run.stdout).trim().split("\n").slice(-3).join(" | ");
    return { throughput: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, completed: 0, failed: tasks, notes: [`no report (exit ${run.code}): ${tail}`] };
  }
  const notes: string[] = [];
  const errors = Object.entries((r.errors ?? {}) as Record<string, number>);
  if (errors.length > 0) notes.push(`errors ${errors.map(([k, v]) => `${k}=${v}`).join(" ")}`);
  if (r.retried > 0) notes.push(`retried=${r.retried}`);
  if (r.timedOut) notes.push("deadline reached");
  if (r.wordCountExpected !== undefined && r.wordCount !== r.wordCountExpected) notes.push(`word count ${r.wordCount} != ${r.wordCountExpected}`);
  if (run.code !== 0) notes.push(`exit ${run.code}`);
  if (run.stderr.trim() !== "") notes.push(`stderr: ${run.stderr.trim().split("\n").slice(-2).join(" | ")}`);
  // The client reports zero latencies when nothing completed: no data, not a fast run.
  const l = r.completed > 0 ? r.latencyMs : { p50: NaN, p95: NaN, p99: NaN, max: NaN };
  return { throughput: r.throughput, p50: l.p50, p95: l.p95, p99: l.p99, max: l.max, completed: r.completed, failed: r.failed, notes };
}

/** Median of the finite values (NaN when none): a run with no report does not drag latencies to zero. */
function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Latencies to the microsecond, as the client reports them (the median of two may not be). */
const ms3 = (v: number) => Math.round(v * 1000) / 1000;

interface Row {
  value: string;
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Totals over all runs, so a single failed task is never hidden by a median. */
  completed: number;
  failed: number;
  tasks: number;
  notes: string[];
}

async function measure(spec: SweepSpec, value: string, sweep: string, options: Options): Promise<Row> {
  const tasks = options.tasks ?? spec.tasks(value);
  const concurrency = sweep === "clients" ? value : String(options.concurrency ?? spec.concurrency);
  const type = sweep === "workload" ? value : (options.type ?? spec.type);
  const cluster = new Cluster();
  const spawned = watchSpawns(cluster);
  active = cluster;
  const runs: RunResult[] = [];
  const notes: string[] = [];
  try {
    const port = await spec.start(cluster, value);
    const args = ["-p", String(port), "-n", String(tasks), "-c", concurrency, "-t", type, "--deadline-s", String(options.deadlineS), "--json"];
    for (let i = 0; i < options.runs; i++) {
      const run = summarize(await cluster.client(args, options.deadlineS * 1000 + KILL_GRACE_MS), tasks);
      runs.push(run);
      notes.push(...run.notes.map((n) => `run ${i + 1}: ${n}`));
      process.stderr.write(`  ${sweep}=${value} run ${i + 1}/${options.runs}: ${run.throughput} tasks/s, p99 ${cell(run.p99) || "-"} ms${run.failed > 0 ? `, ${run.failed} failed` : ""}\n`);
    }
    notes.push(...(await clusterNotes(cluster, port, sweep === "shards")));
  } catch (err) {
    notes.push(`cluster: ${(err as Error).message}`);
  } finally {
    notes.push(...exitedEarly(spawned));
    await cluster.stopAll();
    active = undefined;
  }
  const m = (f: (r: RunResult) => number) => median(runs.map(f));
  const sum = (f: (r: RunResult) => number) => runs.reduce((s, r) => s + f(r), 0);
  const missing = (options.runs - runs.length) * tasks;
  return {
    value, tasks, notes,
    throughput: runs.length === 0 ? 0 : Math.round(m((r) => r.throughput)),
    p50: ms3(m((r) => r.p50)), p95: ms3(m((r) => r.p95)), p99: ms3(m((r) => r.p99)), max: ms3(m((r) => r.max)),
    completed: sum((r) => r.completed), failed: sum((r) => r.failed) + missing,
  };
}

interface Spawned {
  name: string;
  proc: Subprocess;
  output: () => string;
}

/** Records every coordinator, router and worker the cluster spawns, to tell later whether one died under the load. */
function watchSpawns(cluster: Cluster): Spawned[] {
  const seen: Spawned[] = [];
  const spawn = cluster.spawn.bind(cluster);
  cluster.spawn = (name, args) => {
    const s = spawn(name, args);
    seen.push({ name, proc: s.proc, output: s.output });
    return s;
  };
  return seen;
}

/** A cluster process that ended before stopAll: something killed it or it crashed; say which and how. */
function exitedEarly(spawned: Spawned[]): string[] {
  return spawned
    .filter((s) => s.proc.exitCode !== null || s.proc.signalCode !== null)
    .map((s) => {
      // Exit 0 is a clean shutdown, which the servers do on SIGTERM: someone stopped it.
      const how = s.proc.signalCode !== null ? `signal ${s.proc.signalCode}` : `exit ${s.proc.exitCode}${s.proc.exitCode === 0 ? ", a clean shutdown such as on SIGTERM" : ""}`;
      const last = s.output().trim().split("\n").at(-1) ?? "";
      return `${s.name} pid ${s.proc.pid} ended during the runs (${how})${last === "" ? "" : `; last output: ${last.slice(0, 200)}`}`;
    });
}

/**
 * What the servers saw over all runs of one value, from the router's stats: retries and
 * refusals the client's medians would not show, and (shards sweep) how the load spread.
 */
async function clusterNotes(cluster: Cluster, port: number, perShard: boolean): Promise<string[]> {
  const stats = await cluster.stats(port);
  const notes: string[] = [];
  if (stats.router.retried > 0) notes.push(`router retried ${stats.router.retried}`);
  for (const c of stats.coordinators) {
    const s = c.stats;
    if (s === undefined) notes.push(`coordinator ${c.address}: no stats (${c.error ?? "unreachable"})`);
    else if (s.failed + s.retried + s.rejectedQueueFull > 0) notes.push(`shard ${s.shard}: failed ${s.failed}, retried ${s.retried}, rejected (queue full) ${s.rejectedQueueFull}`);
  }
  if (perShard) notes.push(`completed per shard: ${stats.coordinators.map((c) => `${c.stats?.shard ?? "?"}=${c.stats?.completed ?? "?"}`).join(", ")}`);
  return notes;
}

const cell = (v: number) => (Number.isFinite(v) ? String(v) : "");

function toCsv(sweep: string, rows: Row[]): string {
  const lines = rows.map((r) => [sweep, r.value, r.throughput, cell(r.p50), cell(r.p95), cell(r.p99), cell(r.max), r.completed, r.failed].join(","));
  return [CSV_COLUMNS.join(","), ...lines].join("\n") + "\n";
}

function toTable(rows: Row[]): string {
  const header = ["value", "tasks/run", "throughput/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "completed", "failed"];
  const body = rows.map((r) => [r.value, String(r.tasks), String(r.throughput), cell(r.p50), cell(r.p95), cell(r.p99), cell(r.max), String(r.completed), String(r.failed)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), ...body.map(line)].join("\n") + "\n";
}

function describe(sweep: string, spec: SweepSpec, options: Options): string {
  const c = sweep === "clients" ? "" : `, -c ${options.concurrency ?? spec.concurrency}`;
  const t = sweep === "workload" ? "" : `, ${options.type ?? spec.type}`;
  return `${spec.what}${t}${c}; via router; ${options.runs} run${options.runs === 1 ? "" : "s"} per value, medians`;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`sweep: ${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (parsed === undefined) {
    process.stdout.write(HELP);
    return;
  }
  const { sweep, options } = parsed;
  const spec = SWEEPS[sweep]!;
  const values = options.values ?? spec.values;
  const title = describe(sweep, spec, options);
  if (options.replot) return replot(sweep, spec, title, options.out);
  // The machine is shared: the load average says how much else was running.
  const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
  console.log(`sweep ${sweep}: ${title}`);
  console.log(`load average at start: ${load()}`);
  const rows: Row[] = [];
  for (const value of values) rows.push(await measure(spec, value, sweep, options));

  mkdirSync(options.out, { recursive: true });
  const csvPath = resolve(options.out, `${sweep}.csv`);
  const svgPath = resolve(options.out, `${sweep}.svg`);
  writeFileSync(csvPath, toCsv(sweep, rows));
  writeFileSync(svgPath, chart(sweep, spec, title, rows));
  console.log(`load average at end: ${load()}`);
  process.stdout.write(toTable(rows));
  const notes = rows.flatMap((r) => r.notes.map((n) => `${sweep}=${r.value}: ${n}`));
  if (notes.length > 0) console.log(`notes:\n${notes.map((n) => `  ${n}`).join("\n")}`);
  console.log(`wrote ${csvPath} and ${svgPath}`);
  if (rows.some((r) => r.failed > 0)) process.exitCode = 1;
}

function chart(sweep: string, spec: SweepSpec, subtitle: string, rows: Pick<Row, "value" | "throughput" | "p99">[]): string {
  return lineChartSvg({
    title: `Sweep: ${sweep}`,
    subtitle,
    xLabel: spec.xLabel,
    leftLabel: "throughput (tasks/s)",
    rightLabel: "p99 latency (ms)",
    x: spec.xScale === "category" ? rows.map((r) => r.value) : rows.map((r) => Number(r.value)),
    xScale: spec.xScale,
    series: [
      { name: "throughput", values: rows.map((r) => r.throughput), axis: "left" },
      { name: "p99 latency", values: rows.map((r) => r.p99), axis: "right" },
    ],
  });
}

/** --replot: redraws <sweep>.svg from <sweep>.csv (say --runs as measured), to change the chart without measuring again. */
function replot(sweep: string, spec: SweepSpec, subtitle: string, out: string): void {
  const csvPath = resolve(out, `${sweep}.csv`);
  const [header, ...lines] = readFileSync(csvPath, "utf8").trim().split("\n");
  if (header !== CSV_COLUMNS.join(",")) throw new Error(`${csvPath}: expected the header ${CSV_COLUMNS.join(",")}`);
  const num = (text: string | undefined) => (text === undefined || text === "" ? NaN : Number(text));
  const rows = lines.map((line) => {
    const f = line.split(",");
    return { value: f[1] ?? "", throughput: num(f[2]), p99: num(f[5]) };
  });
  const svgPath = resolve(out, `${sweep}.svg`);
  writeFileSync(svgPath, chart(sweep, spec, subtitle, rows));
  console.log(`wrote ${svgPath} from ${csvPath}`);
}

/** The cluster being measured, so an interrupt kills its processes instead of orphaning them. */
let active: Cluster | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => void (active?.stopAll() ?? Promise.resolve()).finally(() => process.exit(130)));
}
await main();
